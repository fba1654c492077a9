"""Accepting EVI webhooks under concurrency, against real Postgres: the unique keys, not timing, decide."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.evi import chat_events as evi_chats
from app.hume.signatures import signed_headers
from app.inbox.acceptance import Accepted
from app.wiring import build_deps
from tests.conftest import EMULATOR_KEY, service_settings

PARALLEL = 8


@pytest.fixture
async def deps(database_url: str, emulator: EmulatorServer) -> AsyncIterator[Deps]:
    async with build_deps(service_settings(database_url, emulator), pool_size=PARALLEL) as built:
        yield built


async def deliver(deps: Deps, payload: dict[str, Any]) -> Accepted:
    body = orjson.dumps(payload)
    now = time.time()
    return await evi_chats.accept_webhook(deps, body=body, headers=signed_headers(body, EMULATOR_KEY, now=now), now=now)


async def counts(deps: Deps) -> tuple[int, int, int]:
    async with deps.sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM inbox_event),"
                    " (SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'process_event')"
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def test_simultaneous_copies_of_one_delivery_are_stored_once(deps: Deps) -> None:
    """Eight copies of the same chat_ended arriving at once (Hume retrying over a slow link): exactly one
    is accepted; the others are duplicates; one job, one inbox row, one queued task."""
    ended = {
        "event_name": "chat_ended", "chat_group_id": "g-race", "chat_id": "chat-race", "end_time": 1_800_000_000_000,
        "duration_seconds": 30, "end_reason": "USER_ENDED",
    }  # fmt: skip
    results = await asyncio.gather(*(deliver(deps, ended) for _ in range(PARALLEL)))
    assert [r.duplicate for r in results].count(False) == 1
    assert await counts(deps) == (1, 1, 1)


async def test_start_and_end_of_a_new_chat_arriving_together_make_one_job(deps: Deps) -> None:
    """chat_started and chat_ended of a chat never seen before, delivered at the same moment (several
    times each), create one job that both events point at, and one queued task per event."""
    base = {"chat_group_id": "g-pair", "chat_id": "chat-pair"}
    started = {
        **base,
        "event_name": "chat_started",
        "start_time": 1_800_000_000_000,
        "chat_start_type": "new_chat_group",
    }
    ended = {
        **base, "event_name": "chat_ended", "end_time": 1_800_000_060_000, "duration_seconds": 60,
        "end_reason": "USER_ENDED",
    }  # fmt: skip
    payloads = [started, ended] * (PARALLEL // 2)
    results = await asyncio.gather(*(deliver(deps, p) for p in payloads))
    assert [r.duplicate for r in results].count(False) == 2
    assert await counts(deps) == (1, 2, 2)
    async with deps.sessionmaker() as session:
        linked = (
            await session.execute(
                text("SELECT count(DISTINCT job_id), count(*) FROM inbox_event WHERE job_id IS NOT NULL")
            )
        ).one()
    assert tuple(linked) == (1, 2)
