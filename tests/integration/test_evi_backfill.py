"""Backfill as the repair for missed or failed EVI webhooks, against real Postgres and the emulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.evi import service as evi_chats
from app.hume.signatures import signed_headers
from app.store import inbox_events
from app.worker.event_runner import run_event
from tests.conftest import EMULATOR_KEY

SINCE = timedelta(hours=1)


async def deliver(deps: Deps, payload: dict[str, Any]) -> int:
    body = orjson.dumps(payload)
    now = time.time()
    accepted = await evi_chats.accept_webhook(
        deps, body=body, headers=signed_headers(body, EMULATOR_KEY, now=now), now=now
    )
    assert accepted.event_id is not None
    return accepted.event_id


async def one(deps: Deps, sql: str, **params: Any) -> Any:
    async with deps.sessionmaker() as session:
        return (await session.execute(text(sql), params)).one()


async def test_backfill_completes_a_chat_whose_chat_ended_never_came(deps: Deps, emulator: EmulatorServer) -> None:
    """A chat seen starting (caller details stored, in progress) whose chat_ended was lost is completed by
    backfill on the same job, keeping the caller details and adding the end."""
    chat = emulator.create_chat(turns=3, seed="lost-end", send_webhooks=False)
    started = await deliver(
        deps,
        {
            "event_name": "chat_started", "chat_group_id": chat["chat_group_id"], "chat_id": chat["id"],
            "start_time": chat["start_timestamp"], "chat_start_type": "new_chat_group", "caller_number": "+4712345678",
        },
    )  # fmt: skip
    assert await run_event(deps, started) == "chat started"
    job_id, status = await one(deps, "SELECT id, status FROM job")
    assert status == "in_progress"

    result = await evi_chats.backfill(deps, since=datetime.now(UTC) - SINCE)
    assert result.ingested == [chat["id"]] and not result.failed
    same_id, status, count, details = await one(deps, "SELECT id, status, num_predictions, details FROM job")
    assert (same_id, status, count) == (job_id, "completed", 6)
    assert details["caller_number"] == "+4712345678" and details["end_reason"] == "USER_ENDED"
    assert details["end_time_ms"] == chat["end_timestamp"]


async def test_backfill_repairs_a_chat_ended_that_died(deps: Deps, emulator: EmulatorServer) -> None:
    """A chat_ended whose processing ran out of retries (Hume down) is processed again by backfill once
    Hume answers: the chat is completed and the event is done, with no second inbox row."""
    chat = emulator.create_chat(turns=2, seed="dead-end", send_webhooks=False)
    event_id = await deliver(
        deps,
        {
            "event_name": "chat_ended", "chat_group_id": chat["chat_group_id"], "chat_id": chat["id"],
            "end_time": chat["end_timestamp"], "duration_seconds": 18, "end_reason": "USER_ENDED",
        },
    )  # fmt: skip
    # What the worker leaves after its last failed attempt.
    async with deps.sessionmaker.begin() as session:
        await inbox_events.finish(session, event_id, "dead", "HumeTransientError: 503")

    result = await evi_chats.backfill(deps, since=datetime.now(UTC) - SINCE)
    assert result.ingested == [chat["id"]] and not result.failed
    assert await one(deps, "SELECT status, num_predictions FROM job") == ("completed", 4)
    assert await one(deps, "SELECT count(*), min(state) FROM inbox_event") == (1, "done")


async def test_backfill_reports_a_failing_chat_and_ingests_the_others(deps: Deps, emulator: EmulatorServer) -> None:
    """A chat whose history Hume refuses is reported as failed with Hume's reason and left unstored, while
    the other chats are ingested; a later run, once Hume answers, ingests the failed one."""
    good = emulator.create_chat(turns=2, seed="ok", send_webhooks=False)
    bad = emulator.create_chat(turns=2, seed="refused", send_webhooks=False)
    emulator.set_faults(path=f"/v0/evi/chats/{bad['id']}", status=404)
    first = await evi_chats.backfill(deps, since=datetime.now(UTC) - SINCE)
    assert first.ingested == [good["id"]] and list(first.failed) == [bad["id"]]
    assert bad["id"] in first.failed[bad["id"]]
    assert await one(deps, "SELECT status FROM job WHERE hume_job_id = :id", id=bad["id"]) == ("in_progress",)

    emulator.set_faults(clear=True)
    second = await evi_chats.backfill(deps, since=datetime.now(UTC) - SINCE)
    assert second.ingested == [bad["id"]] and second.already_stored == [good["id"]]
    assert await one(deps, "SELECT count(*) FROM job WHERE status = 'completed'") == (2,)
    assert await one(deps, "SELECT count(*) FROM prediction") == (8,)
