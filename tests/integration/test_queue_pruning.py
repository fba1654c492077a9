"""The hourly pruning: finished queue tasks are deleted once QUEUE_RETENTION_H has passed since they ended,
waiting ones never; processed inbox events lose their bodies after INBOX_BODY_RETENTION_H, keeping their
rows; our webhooks' ended messages go after WEBHOOK_LOG_RETENTION_H with their attempts, pending ones never."""

from __future__ import annotations

import time
from typing import Any

import procrastinate
import pytest
from procrastinate.jobs import Status
from sqlalchemy import text

from app.deps import Deps
from app.errors import Conflict
from app.inbox import replay
from app.inbox.pipeline import DELIVER_MESSAGE, PRUNE
from app.notifications import signing
from app.store import api_keys, webhook_endpoints, webhook_messages
from app.worker import reconciler


async def _rows(deps: Deps, sql: str) -> list[tuple[Any, ...]]:
    async with deps.sessionmaker() as session:
        return [tuple(row) for row in (await session.execute(text(sql))).all()]


async def _prune(deps: Deps) -> None:
    """The hourly periodic task, run once now as the worker would."""
    now = int(time.time())
    job = procrastinate.jobs.Job(
        id=0, queue="default", lock=None, queueing_lock=PRUNE, task_name=PRUNE, task_kwargs={"timestamp": now}
    )
    context = procrastinate.JobContext(
        app=deps.queue, job=job, start_timestamp=now, additional_context={"deps": deps}, abort_reason=lambda: None
    )
    await reconciler.prune(context, now)


async def test_tasks_finished_before_the_retention_are_deleted_with_their_events(deps: Deps) -> None:
    retention = deps.settings.queue_retention_h
    ids = [await deps.queue.configure_task(DELIVER_MESSAGE).defer_async(message_id=n) for n in range(5)]
    succeeded_old, failed_old, succeeded_recent, waiting_old, failed_recent = ids
    manager = deps.queue.job_manager
    for job_id, status in [
        (succeeded_old, Status.SUCCEEDED), (failed_old, Status.FAILED), (succeeded_recent, Status.SUCCEEDED),
        (failed_recent, Status.FAILED),
    ]:  # fmt: skip
        await manager.finish_job_by_id_async(job_id=job_id, status=status, delete_job=False)
    async with deps.sessionmaker.begin() as session:
        # Ended a little over the retention ago (and one waiting as long, which is no reason to drop it).
        await session.execute(
            text(
                "UPDATE procrastinate_events SET at = now() - make_interval(hours => :h + 1) WHERE job_id = ANY(:ids)"
            ),
            {"h": retention, "ids": [succeeded_old, failed_old, waiting_old]},
        )
        await session.execute(
            text("UPDATE procrastinate_events SET at = now() - make_interval(hours => :h - 1) WHERE job_id = :id"),
            {"h": retention, "id": succeeded_recent},
        )

    await _prune(deps)

    left = await _rows(deps, "SELECT id FROM procrastinate_jobs ORDER BY id")
    assert left == [(succeeded_recent,), (waiting_old,), (failed_recent,)]
    orphaned_events = await _rows(
        deps, f"SELECT count(*) FROM procrastinate_events WHERE job_id IN ({succeeded_old}, {failed_old})"
    )
    assert orphaned_events == [(0,)]


async def test_processed_events_lose_their_bodies_after_the_retention_and_keep_their_rows(deps: Deps) -> None:
    retention = deps.settings.inbox_body_retention_h
    body = b'{"predictions": "' + b"x" * 100_000 + b'"}'
    ages = {
        "done-old": ("done", retention + 1), "ignored-old": ("ignored", retention + 1),
        "done-recent": ("done", retention - 1), "dead-old": ("dead", retention + 1),
        "received-old": ("received", retention + 1),
    }  # fmt: skip
    async with deps.sessionmaker.begin() as session:
        for key, (state, hours) in ages.items():
            await session.execute(
                text(
                    "INSERT INTO inbox_event (provider, dedup_key, event_type, body, state, processed_at)"
                    " VALUES ('hume_batch', :key, 'COMPLETED', :body, :state,"
                    " CASE WHEN :state = 'received' THEN NULL ELSE now() - make_interval(hours => :hours) END)"
                ),
                {"key": key, "body": body, "state": state, "hours": hours},
            )
    await _prune(deps)

    stored = {
        key: (size, pruned)
        for key, size, pruned in await _rows(
            deps, "SELECT dedup_key, octet_length(body), body_pruned_at IS NOT NULL FROM inbox_event"
        )
    }
    assert stored == {
        "done-old": (0, True), "ignored-old": (0, True), "done-recent": (len(body), False),
        "dead-old": (len(body), False), "received-old": (len(body), False),
    }  # fmt: skip
    [(ignored_id,)] = await _rows(deps, "SELECT id FROM inbox_event WHERE dedup_key = 'ignored-old'")
    with pytest.raises(Conflict, match="pruned"):
        await replay.replay(deps, int(ignored_id))


async def test_ended_webhook_messages_are_deleted_after_the_log_retention_with_their_attempts(deps: Deps) -> None:
    retention = deps.settings.webhook_log_retention_h
    async with deps.sessionmaker.begin() as session:
        await api_keys.create(session, name="upstream", scopes=["admin"])
        owner = (await session.execute(text("SELECT id FROM api_key"))).scalar_one()
        endpoint = await webhook_endpoints.create(
            session, api_key_id=owner, url="https://1.1.1.1/hook", events=["job.completed"], description=None,
            secret=signing.new_secret(),
        )  # fmt: skip
        for state, hours in [("delivered", retention + 1), ("failed", retention + 1), ("pending", retention + 1),
                             ("delivered", retention - 1)]:  # fmt: skip
            message_id = await webhook_messages.add(
                session, endpoint_id=endpoint.id, job_id=None, event_type="ping", payload={"state": state}
            )
            await session.execute(
                text(
                    "UPDATE webhook_message SET state = :state, created_at = now() - make_interval(hours => :hours)"
                    " WHERE id = :id"
                ),
                {"state": state, "hours": hours, "id": message_id},
            )
            await session.execute(
                text("INSERT INTO webhook_attempt (message_id, status_code, duration_ms) VALUES (:id, 500, 3)"),
                {"id": message_id},
            )

    await _prune(deps)

    left = await _rows(deps, "SELECT state FROM webhook_message ORDER BY state")
    assert left == [("delivered",), ("pending",)]
    assert await _rows(deps, "SELECT count(*) FROM webhook_attempt") == [(2,)]
    recent = await _rows(
        deps, f"SELECT state FROM webhook_message WHERE created_at > now() - make_interval(hours => {retention})"
    )
    assert recent == [("delivered",)]
