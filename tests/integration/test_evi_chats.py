"""EVI chat service against real Postgres and the emulator over HTTP: exactly-once ingest under races,
chats still active when chat_ended arrives, and backfill through the same inbox key as webhooks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import procrastinate
import pytest
from sqlalchemy import text

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.errors import Unauthorized
from app.evi import service as evi_chats
from app.hume.errors import HumeTransientError
from app.hume.signatures import signed_headers
from app.inbox.acceptance import Accepted
from app.inbox.pipeline import PROCESS_EVENT, RetryLater
from app.worker import event_runner
from app.worker.event_runner import run_event
from tests.conftest import BUILT_IN_EMULATOR, EMULATOR_KEY


def ended_payload(chat: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_name": "chat_ended",
        "chat_group_id": chat["chat_group_id"],
        "chat_id": chat["id"],
        "end_time": chat["end_timestamp"] or int(time.time() * 1000),
        "duration_seconds": 10,
        "end_reason": "USER_ENDED",
    }


async def deliver(deps: Deps, payload: dict[str, Any]) -> Accepted:
    body = orjson.dumps(payload)
    now = time.time()
    return await evi_chats.accept_webhook(deps, body=body, headers=signed_headers(body, EMULATOR_KEY, now=now), now=now)


async def scalar(deps: Deps, sql: str, **params: Any) -> Any:
    async with deps.sessionmaker() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def test_racing_processors_store_a_chat_once(deps: Deps, emulator: EmulatorServer) -> None:
    """Three workers processing the same chat_ended at once (a retry racing a slow run) store its rows
    once: one completes, the others find it final; a later run is a no-op."""
    chat = emulator.create_chat(turns=4, seed="race", send_webhooks=False)
    accepted = await deliver(deps, ended_payload(chat))
    assert accepted.event_id is not None and not accepted.duplicate
    outcomes = await asyncio.gather(*(run_event(deps, accepted.event_id) for _ in range(3)))
    assert outcomes.count("completed") == 1, outcomes
    assert set(outcomes) <= {"completed", "duplicate", "already processed"}
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 8
    assert await scalar(deps, "SELECT count(*) FROM source") == 1
    assert await run_event(deps, accepted.event_id) == "already processed"
    assert await scalar(deps, "SELECT state FROM inbox_event WHERE id = :id", id=accepted.event_id) == "done"


async def test_chat_still_active_in_history_is_retried_not_stored(deps: Deps, emulator: EmulatorServer) -> None:
    """If EVI's history still says ACTIVE when chat_ended arrives, nothing is stored and the task retries;
    once the history shows the end, the same event completes the chat."""
    chat = emulator.create_chat(turns=2, seed="active", active=True, send_webhooks=False)
    accepted = await deliver(deps, ended_payload(chat))
    assert accepted.event_id is not None
    with pytest.raises(RetryLater):
        await run_event(deps, accepted.event_id)
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 0
    assert await scalar(deps, "SELECT status FROM job") == "in_progress"
    # The end is on the job already, while the predictions wait for the history.
    assert (await scalar(deps, "SELECT details FROM job"))["end_reason"] == "USER_ENDED"
    emulator_end(emulator, chat["id"])
    assert await run_event(deps, accepted.event_id) == "completed"
    assert await scalar(deps, "SELECT status FROM job") == "completed"
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 4


async def test_hume_outage_leaves_the_chat_ended_but_unstored_until_a_retry(
    deps: Deps, emulator: EmulatorServer
) -> None:
    """When Hume answers 503 for the chat history, the task fails (to be retried) with the chat's end
    recorded and nothing else stored; the retry after Hume recovers stores the chat once."""
    chat = emulator.create_chat(turns=3, seed="outage", send_webhooks=False)
    accepted = await deliver(deps, ended_payload(chat))
    assert accepted.event_id is not None
    emulator.set_faults(path="/v0/evi/chats/*", status=503)
    with pytest.raises(HumeTransientError):
        await run_event(deps, accepted.event_id)
    assert await scalar(deps, "SELECT status FROM job") == "in_progress"
    details = await scalar(deps, "SELECT details FROM job")
    assert details["end_reason"] == "USER_ENDED" and details["duration_seconds"] == 10
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 0
    assert await scalar(deps, "SELECT state FROM inbox_event") == "received"
    emulator.set_faults(clear=True)
    assert await run_event(deps, accepted.event_id) == "completed"
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 6
    assert await scalar(deps, "SELECT state FROM inbox_event") == "done"


def emulator_end(emulator: EmulatorServer, chat_id: str) -> None:
    import httpx

    response = httpx.post(f"{emulator.base_url}/_emulator/evi/chats/{chat_id}/end", json={}, timeout=10)
    assert response.status_code == 200, response.text


async def test_backfill_ingests_what_is_missing_once(deps: Deps, emulator: EmulatorServer) -> None:
    """Backfill lists chats since the date, skips active ones and ones already stored by a webhook,
    ingests the rest; run again it ingests nothing; a webhook for a backfilled chat is a replay."""
    via_webhook = emulator.create_chat(turns=2, seed="b-webhook", send_webhooks=False)
    missing = [emulator.create_chat(turns=3, seed=f"b-{i}", send_webhooks=False) for i in range(2)]
    active = emulator.create_chat(turns=1, seed="b-active", active=True, send_webhooks=False)
    old = emulator.create_chat(turns=1, seed="b-old", duration_s=3 * 3600, send_webhooks=False)
    accepted = await deliver(deps, ended_payload(via_webhook))
    assert accepted.event_id is not None
    assert await run_event(deps, accepted.event_id) == "completed"

    since = datetime.now(UTC) - timedelta(hours=1)
    first = await evi_chats.backfill(deps, since=since)
    assert first.listed == 4  # the three-hour-old chat started before `since`
    assert sorted(first.ingested) == sorted(c["id"] for c in missing)
    assert first.already_stored == [via_webhook["id"]] and first.active == [active["id"]] and not first.failed
    jobs = await scalar(deps, "SELECT count(*) FROM job WHERE kind = 'evi_chat' AND status = 'completed'")
    assert jobs == 3
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 2 * 2 + 2 * 3 * 2
    assert await scalar(deps, "SELECT count(*) FROM job WHERE hume_job_id = :id", id=old["id"]) == 0

    again = await evi_chats.backfill(deps, since=since)
    assert again.ingested == [] and sorted(again.already_stored) == sorted(
        [via_webhook["id"], *(c["id"] for c in missing)]
    )
    late = await deliver(deps, ended_payload(missing[0]))
    assert late.duplicate
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 16
    details = await scalar(deps, "SELECT details FROM job WHERE hume_job_id = :id", id=missing[0]["id"])
    assert details["end_reason"] == "USER_ENDED" and details["chat_group_id"] == missing[0]["chat_group_id"]


def task_context(deps: Deps, event_id: int, attempts: int) -> procrastinate.JobContext:
    job = procrastinate.jobs.Job(
        id=1, queue="default", lock=None, queueing_lock=None, task_name=PROCESS_EVENT,
        task_kwargs={"event_id": event_id}, attempts=attempts,
    )  # fmt: skip
    return procrastinate.JobContext(
        app=deps.queue, job=job, start_timestamp=time.time(), additional_context={"deps": deps},
        abort_reason=lambda: None,
    )  # fmt: skip


@pytest.mark.slow
async def test_failing_event_is_retried_then_left_dead_and_visible(deps: Deps, emulator: EmulatorServer) -> None:
    """A chat_ended whose history Hume cannot serve (503) is retried: each attempt is counted on the inbox
    event and re-raised for procrastinate; on the last attempt the event is dead with the error. The same
    policy as batch events (one runner)."""
    chat = emulator.create_chat(turns=2, seed="retry", send_webhooks=False)
    accepted = await deliver(deps, ended_payload(chat))
    assert accepted.event_id is not None
    emulator.set_faults(path="/v0/evi/chats/*", status=503)
    with pytest.raises(HumeTransientError):
        await event_runner.process_event(task_context(deps, accepted.event_id, attempts=0), accepted.event_id)
    state = "SELECT state || ':' || attempts FROM inbox_event WHERE id = :id"
    assert await scalar(deps, state, id=accepted.event_id) == "received:1"
    max_attempts = int(getattr(deps.queue.tasks[PROCESS_EVENT].retry_strategy, "max_attempts", 0))
    assert max_attempts > 1
    await event_runner.process_event(task_context(deps, accepted.event_id, max_attempts - 1), accepted.event_id)
    assert await scalar(deps, state, id=accepted.event_id) == "dead:2"
    error = await scalar(deps, "SELECT last_error FROM inbox_event WHERE id = :id", id=accepted.event_id)
    assert "503" in error
    assert await scalar(deps, "SELECT status FROM job") == "in_progress"


async def test_events_queued_together_are_applied_alone_and_a_failing_one_goes_on_by_itself(
    deps: Deps, emulator: EmulatorServer
) -> None:
    """The events one intake statement stored share one process_events task. A chat_ended whose history
    Hume cannot serve (503) is recorded and handed to a process_event task of its own, scheduled after the
    first backoff and told it had one try; the others in the batch are applied all the same, and the batch
    task ends without an error (a retry of it would apply nothing twice). The handed-on task's last try
    comes one earlier, so the event gets WORKER_MAX_ATTEMPTS tries in all."""
    good = [emulator.create_chat(turns=2, seed=f"batch-{n}", send_webhooks=False) for n in range(2)]
    bad = emulator.create_chat(turns=2, seed="batch-bad", send_webhooks=False)
    accepted = await asyncio.gather(*(deliver(deps, ended_payload(c)) for c in (*good, bad)))
    ids = [a.event_id for a in accepted if a.event_id is not None]
    assert len(ids) == 3
    queued = await scalar(deps, "SELECT array_agg(args) FROM procrastinate_jobs WHERE task_name = 'process_events'")
    assert sorted(i for args in queued for i in args["event_ids"]) == sorted(ids) and len(queued) < len(ids)
    emulator.set_faults(path=f"/v0/evi/chats/{bad['id']}", status=503)
    await event_runner.process_events(task_context(deps, ids[0], attempts=0), ids)
    state = "SELECT state || ':' || attempts FROM inbox_event WHERE id = :id"
    assert [await scalar(deps, state, id=i) for i in ids] == ["done:0", "done:0", "received:1"]
    handed = await scalar(
        deps, "SELECT array_agg(args) FROM procrastinate_jobs WHERE task_name = :task AND scheduled_at > now()",
        task=PROCESS_EVENT,
    )  # fmt: skip
    assert handed == [{"event_id": ids[2], "tried": 1}]
    max_attempts = deps.settings.worker_max_attempts
    await event_runner.process_event(task_context(deps, ids[2], max_attempts - 2), ids[2], tried=1)
    assert await scalar(deps, state, id=ids[2]) == "dead:2"


async def test_chat_hume_does_not_know_goes_dead_at_once(deps: Deps) -> None:
    """A chat_ended for a chat EVI answers 404 for is a permanent error: dead on the first attempt (no
    pointless retries), the error naming the chat; the job stays in progress until a replay."""
    accepted = await deliver(deps, {**ended_payload({"id": "ghost", "chat_group_id": "g", "end_timestamp": 1})})
    assert accepted.event_id is not None
    await event_runner.process_event(task_context(deps, accepted.event_id, attempts=0), accepted.event_id)
    state = "SELECT state || ':' || attempts FROM inbox_event WHERE id = :id"
    assert await scalar(deps, state, id=accepted.event_id) == "dead:1"
    error = await scalar(deps, "SELECT last_error FROM inbox_event WHERE id = :id", id=accepted.event_id)
    assert "ghost" in error and "404" in error
    assert await scalar(deps, "SELECT status FROM job") == "in_progress"


async def test_built_in_emulator_deliveries_verify_without_configuration(deps: Deps) -> None:
    """With no Hume key at all (`make run` on the built-in emulator) the emulator's signed deliveries are
    accepted; once any key is configured, only configured keys count."""
    from app.config import EMULATOR_API_KEY

    body = orjson.dumps({"event_name": "chat_paused", "chat_id": "dev-chat"})
    now = time.time()
    headers = signed_headers(body, EMULATOR_API_KEY, now=now)
    dev = replace(deps, settings=deps.settings.replace(**BUILT_IN_EMULATOR))
    assert not (await evi_chats.accept_webhook(dev, body=body, headers=headers, now=now)).duplicate
    configured = replace(dev, settings=dev.settings.replace(hume_webhook_signing_key="real-key"))
    with pytest.raises(Unauthorized):
        await evi_chats.accept_webhook(configured, body=body, headers=headers, now=now)


async def test_long_chat_is_read_over_every_page(deps: Deps, emulator: EmulatorServer) -> None:
    """A chat of 362 events spans four history pages of 100: all 240 scored utterances are stored, with four
    requests for the history (no extra request for an empty page)."""
    chat = emulator.create_chat(turns=120, seed="long", send_webhooks=False)
    accepted = await deliver(deps, ended_payload(chat))
    assert accepted.event_id is not None
    assert await run_event(deps, accepted.event_id) == "completed"
    assert await scalar(deps, "SELECT count(*) FROM prediction") == 240
    assert await scalar(deps, "SELECT count(DISTINCT extras ->> 'event_id') FROM prediction") == 240
    assert emulator.calls()["GET /v0/evi/chats/{id}"] == 4
