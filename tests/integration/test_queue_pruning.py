"""Finished queue tasks are deleted once QUEUE_RETENTION_H has passed since they ended; waiting ones never."""

from __future__ import annotations

import time

import procrastinate
from procrastinate.jobs import Status
from sqlalchemy import text

from app.deps import Deps
from app.inbox import reconciler
from app.inbox.pipeline import DELIVER_MESSAGE, PRUNE


async def _rows(deps: Deps, sql: str) -> list[tuple[int, ...]]:
    async with deps.sessionmaker() as session:
        return [tuple(row) for row in (await session.execute(text(sql))).all()]


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

    now = int(time.time())
    job = procrastinate.jobs.Job(
        id=0, queue="default", lock=None, queueing_lock=PRUNE, task_name=PRUNE, task_kwargs={"timestamp": now}
    )
    context = procrastinate.JobContext(
        app=deps.queue, job=job, start_timestamp=now, additional_context={"deps": deps}, abort_reason=lambda: None
    )
    await reconciler.prune(context, now)

    left = await _rows(deps, "SELECT id FROM procrastinate_jobs ORDER BY id")
    assert left == [(succeeded_recent,), (waiting_old,), (failed_recent,)]
    orphaned_events = await _rows(
        deps, f"SELECT count(*) FROM procrastinate_events WHERE job_id IN ({succeeded_old}, {failed_old})"
    )
    assert orphaned_events == [(0,)]
