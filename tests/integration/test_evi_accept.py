"""Accepting EVI webhooks under concurrency, against real Postgres: the unique keys, not timing, decide."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import text

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.evi import service as evi_chats
from app.hume.signatures import signed_headers
from app.inbox.acceptance import Accepted
from app.store import webhook_intake
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
                    " (SELECT count(*) FROM procrastinate_jobs, jsonb_array_elements(args -> 'event_ids')"
                    "  WHERE task_name = 'process_events')"
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


async def test_two_processes_racing_on_new_chats_make_one_job_each(database_url: str, emulator: EmulatorServer) -> None:
    """Two API processes (two intakes, two pools) receive the start and the end of the same new chats at
    the same moment: each chat still gets one job, and each event is stored and queued once, under it."""
    chats = [f"chat-two-{n}" for n in range(12)]

    def started(chat: str) -> dict[str, Any]:
        return {"event_name": "chat_started", "chat_group_id": f"g-{chat}", "chat_id": chat,
                "start_time": 1_800_000_000_000, "chat_start_type": "new_chat_group"}  # fmt: skip

    def ended(chat: str) -> dict[str, Any]:
        return {"event_name": "chat_ended", "chat_group_id": f"g-{chat}", "chat_id": chat,
                "end_time": 1_800_000_060_000, "duration_seconds": 60, "end_reason": "USER_ENDED"}  # fmt: skip

    settings = service_settings(database_url, emulator)
    async with build_deps(settings, pool_size=4) as one, build_deps(settings, pool_size=4) as other:
        results = await asyncio.gather(
            *(deliver(one, started(c)) for c in chats), *(deliver(other, ended(c)) for c in chats)
        )
        assert all(not r.duplicate for r in results)
        assert await counts(one) == (len(chats), 2 * len(chats), 2 * len(chats))
        async with one.sessionmaker() as session:
            per_chat = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM inbox_event e JOIN job j ON j.id = e.job_id"
                        " WHERE j.hume_job_id = convert_from(e.body, 'UTF8')::jsonb->>'chat_id'"
                    )
                )
            ).scalar_one()
        assert per_chat == 2 * len(chats)


async def test_a_delivery_postgres_refuses_fails_alone(deps: Deps) -> None:
    """Deliveries written together share a statement; one that Postgres refuses (a callback for a job
    deleted meanwhile) gets its own error, and the others arriving with it are stored all the same."""
    from uuid import uuid4

    import psycopg

    from app.inbox.pipeline import PROCESS_EVENTS

    intake = deps.intake

    async def store(n: int, job_id: Any = None) -> int | None:
        return await intake.store(
            provider="test", dedup_key=f"alone-{n}", event_type="callback", job_id=job_id, headers={},
            body=b'{"n": %d}' % n, task=PROCESS_EVENTS,
        )  # fmt: skip

    results = await asyncio.gather(*(store(n) for n in range(10)), store(99, uuid4()), return_exceptions=True)
    assert isinstance(results[-1], psycopg.errors.ForeignKeyViolation)
    assert all(isinstance(r, int) for r in results[:-1]), results
    assert await counts(deps) == (0, 10, 10)


async def test_a_chat_is_found_by_its_key_however_stale_the_planner_statistics(database_url: str) -> None:
    """20,000 chats stored since the table's statistics were taken (a busy day's growth): one statement of
    64 deliveries, 8 of them for known chats, probes the (kind, hume_job_id) index once per chat instead of
    reading every evi_chat job (20,000 rows fetched before), and the known chats' events join their jobs."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("ANALYZE job")
        await conn.execute(
            "INSERT INTO job (id, kind, status, hume_job_id) SELECT gen_random_uuid(), 'evi_chat', 'in_progress',"
            " 'chat-' || g FROM generate_series(1, 20000) g"
        )
        await conn.commit()
        chats = [f"chat-{n}" for n in range(1, 9)] + [f"new-chat-{n}" for n in range(56)]
        deliveries = [
            webhook_intake._Delivery("hume_evi", f"evi:{chat}:chat_started", "chat_started", None, chat, "{}", b"{}",
                                     "process_events")
            for chat in chats
        ]  # fmt: skip
        event_ids = await webhook_intake._store_all(conn, deliveries)
        cursor = await conn.execute(
            "SELECT coalesce(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'job'"
        )
        read = await cursor.fetchone()
        await conn.commit()
        assert all(isinstance(event_id, int) for event_id in event_ids)
        assert read is not None and read[0] < 1000, read
        cursor = await conn.execute(
            "SELECT count(*) FROM inbox_event e JOIN job j ON j.id = e.job_id WHERE j.hume_job_id = ANY(%s)",
            (chats[:8],),
        )
        assert await cursor.fetchone() == (8,)
        cursor = await conn.execute("SELECT count(*) FROM job WHERE kind = 'evi_chat'")
        assert await cursor.fetchone() == (20_056,)
