"""The process's live-session flusher against real Postgres: every session's measurements of a tick are stored
in one transaction, each id once; a tick cut by a killed connection keeps its measurements for the next one;
one session's malformed rows do not hold back another's; a session's last measurements are stored in the
transaction that ends its job, after the tick holding its earlier ones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Deps
from app.sessions.flusher import LiveFlusher
from app.store import live_sessions
from app.worker.outbox import end_job
from tests.integration.test_live_session_store import measurement, open_session

_made: list[LiveFlusher] = []


@pytest.fixture(autouse=True)
async def _close_flushers() -> AsyncIterator[None]:
    """Each flusher holds a connection of its own: closed after the test."""
    yield
    while _made:
        await _made.pop().aclose()


def flusher_of(deps: Deps, **options: Any) -> LiveFlusher:
    """A flusher ticked by the test (the service's own, `deps.live`, ticks on its own schedule)."""
    made = LiveFlusher(deps.sessionmaker, interval_s=60, **options)
    _made.append(made)
    return made


async def stored(deps: Deps, *job_ids: uuid.UUID) -> dict[uuid.UUID, tuple[int, int, set[str]]]:
    """Per job: (prediction rows, the job's num_predictions, the transaction ids that wrote its rows)."""
    async with deps.sessionmaker() as session:
        found = {}
        for job_id in job_ids:
            rows = (
                await session.execute(
                    text("SELECT count(*), array_agg(DISTINCT xmin::text) FROM prediction WHERE job_id = :id"),
                    {"id": job_id},
                )
            ).one()
            counted = (
                await session.execute(text("SELECT num_predictions FROM job WHERE id = :id"), {"id": job_id})
            ).scalar_one()
            found[job_id] = (rows[0], counted, set(rows[1] or []))
    return found


async def waiting_on_a_lock(deps: Deps) -> int:
    """The backend of the tick waiting on a session's row lock."""
    for _ in range(200):
        async with deps.sessionmaker() as session:  # a new transaction each time: a fresh pg_stat_activity
            pid = (
                await session.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%FROM live_session%' AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar()
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.02)
    raise AssertionError("the tick never waited on the session's row")


async def test_two_sessions_are_stored_in_one_transaction_each_id_once(deps: Deps) -> None:
    flusher = flusher_of(deps)
    first, second = await open_session(deps), await open_session(deps)
    flusher.open(first, "audio")
    flusher.open(second, "audio")
    for i in range(3):
        assert flusher.add(first, i, measurement(i, {"calmness": 0.5, "joy": 0.25}), 0)
    assert flusher.add(first, 1, measurement(1, {"calmness": 0.5}), 0), "Hume sending an id again"
    assert flusher.add(second, 0, measurement(0, {"interest": 0.75}), 0)
    tick = await flusher.tick()
    assert (tick.sessions, tick.stored, tick.failed) == (2, 4, 0)
    found = await stored(deps, first, second)
    assert (found[first][0], found[first][1]) == (3, 3)
    assert (found[second][0], found[second][1]) == (1, 1)
    assert found[first][2] == found[second][2] and len(found[first][2]) == 1, "both sessions' rows in one transaction"

    # Ids stored by an earlier tick are not stored again (a re-sent measurement, a retried batch).
    assert flusher.add(first, 2, measurement(2, {"calmness": 0.5}), 0)
    assert flusher.add(first, 3, measurement(3, {"joy": 0.5}), 0)
    assert (await flusher.tick()).stored == 1
    assert (await stored(deps, first))[first][:2] == (4, 4)
    assert (await flusher.tick()).sessions == 0, "nothing new and no heartbeat due: no transaction at all"


async def test_a_tick_cut_by_a_killed_connection_keeps_its_measurements(deps: Deps) -> None:
    flusher = flusher_of(deps)
    job_id = await open_session(deps)
    flusher.open(job_id, "audio")
    for i in range(2):
        assert flusher.add(job_id, i, measurement(i, {"calmness": 0.5}), 0)
    async with deps.sessionmaker() as blocker:
        # The session's row held by another transaction: the tick waits on it, and its connection is killed there.
        await blocker.execute(text("SELECT 1 FROM live_session WHERE job_id = :id FOR UPDATE"), {"id": job_id})
        tick = asyncio.create_task(flusher.tick())
        pid = await waiting_on_a_lock(deps)
        await blocker.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        cut = await tick
        await blocker.rollback()
    assert (cut.stored, cut.failed) == (0, 1)
    assert flusher.pending(job_id) == 2, "what the cut tick held is pending again"
    assert flusher.add(job_id, 2, measurement(2, {"joy": 0.5}), 0)
    later = await flusher.tick()
    assert (later.stored, later.failed) == (3, 0)
    assert (await stored(deps, job_id))[job_id][:2] == (3, 3)
    assert flusher.pending(job_id) == 0


async def test_one_session_s_malformed_rows_do_not_hold_back_another_s(deps: Deps) -> None:
    flusher = flusher_of(deps)
    good, bad = await open_session(deps), await open_session(deps)
    flusher.open(good, "audio")
    flusher.open(bad, "audio")
    assert flusher.add(good, 0, measurement(0, {"calmness": 0.5}), 0)
    # A score past float4's range: the store refuses it (PredictionFormatError), storing it again cannot help.
    assert flusher.add(bad, 0, measurement(0, {"calmness": 1e39}), 0)
    tick = await flusher.tick()
    assert (tick.stored, tick.failed) == (1, 1)
    found = await stored(deps, good, bad)
    assert (found[good][0], found[bad][0]) == (1, 0)
    assert flusher.pending(bad) == 0, "a malformed batch is dropped, not retried forever"
    assert flusher.add(bad, 1, measurement(1, {"calmness": 0.25}), 0)
    assert (await flusher.tick()).stored == 1, "the session goes on"


async def test_a_session_s_last_measurements_are_stored_with_its_end_after_the_tick_in_flight(deps: Deps) -> None:
    flusher = flusher_of(deps)
    job_id = await open_session(deps)
    flusher.open(job_id, "audio")
    assert flusher.add(job_id, 0, measurement(0, {"calmness": 0.5}), 0)
    async with deps.sessionmaker() as blocker:
        await blocker.execute(text("SELECT 1 FROM live_session WHERE job_id = :id FOR UPDATE"), {"id": job_id})
        tick = asyncio.create_task(flusher.tick())
        await waiting_on_a_lock(deps)  # the tick holds measurement 0 and waits on the row
        assert flusher.add(job_id, 1, measurement(1, {"joy": 0.5}), 0)

        async def ending(session: AsyncSession) -> None:
            await end_job(session, deps, job_id, "completed")

        finishing = asyncio.create_task(flusher.finish(job_id, ending))
        await asyncio.sleep(0.2)
        assert not finishing.done(), "the end waits for the tick holding the session's earlier measurement"
        await blocker.rollback()
    assert (await tick).stored == 1
    assert await finishing == 1
    async with deps.sessionmaker() as session:
        status, count, job_xmin = (
            await session.execute(
                text("SELECT status, num_predictions, xmin::text FROM job WHERE id = :id"), {"id": job_id}
            )
        ).one()
        last_xmin = (
            await session.execute(
                text("SELECT xmin::text FROM prediction WHERE job_id = :id ORDER BY time_begin DESC LIMIT 1"),
                {"id": job_id},
            )
        ).scalar_one()
    assert (status, count) == ("completed", 2)
    assert last_xmin == job_xmin, "the last measurement was stored by the transaction that ended the job"
    assert (await flusher.tick()).sessions == 0, "an ended session is no longer flushed"


async def test_a_session_s_unstored_measurements_are_capped(deps: Deps) -> None:
    flusher = flusher_of(deps, max_pending_bytes=sum(len(measurement(i, {"calmness": 0.5})) for i in range(3)))
    job_id = await open_session(deps)
    flusher.open(job_id, "audio")
    assert all(flusher.add(job_id, i, measurement(i, {"calmness": 0.5}), 0) for i in range(3))
    assert not flusher.add(job_id, 3, measurement(3, {"calmness": 0.5}), 0), "a fourth would pass the cap"
    assert flusher.pending(job_id) == 3
    assert (await flusher.tick()).stored == 3
    assert flusher.add(job_id, 3, measurement(3, {"calmness": 0.5}), 0), "stored measurements free their room"


async def until_stored(flusher: LiveFlusher, job_id: uuid.UUID, within_s: float) -> None:
    """Until the flusher has stored the session's measurements (none pending), at most `within_s`."""
    started = asyncio.get_running_loop().time()
    while flusher.pending(job_id) or flusher.totals.stored == 0:
        assert asyncio.get_running_loop().time() - started < within_s, "not stored in time"
        await asyncio.sleep(0.01)


async def test_a_tick_comes_when_a_batch_is_held_or_the_oldest_has_waited_the_interval(deps: Deps) -> None:
    job_id = await open_session(deps)
    full = flusher_of(deps, batch_rows=3)  # an interval of 60 s: only the batch can start its tick
    full.open(job_id, "audio")
    await full.start()
    for i in range(3):
        assert full.add(job_id, i, measurement(i, {"calmness": 0.5}), 0)
    await until_stored(full, job_id, within_s=5)
    assert full.totals.stored == 3
    await full.aclose()
    other = await open_session(deps)
    waited = LiveFlusher(deps.sessionmaker, interval_s=0.3)
    _made.append(waited)
    waited.open(other, "audio")
    await waited.start()
    await asyncio.sleep(0.5)  # idle ticks meanwhile
    assert waited.add(other, 0, measurement(0, {"joy": 0.5}), 0)
    await until_stored(waited, other, within_s=5)  # one measurement of 256: its age starts the tick
    assert (await stored(deps, other))[other][:2] == (1, 1)


async def test_closing_stores_what_is_still_held(deps: Deps) -> None:
    flusher = flusher_of(deps)
    await flusher.start()
    job_id = await open_session(deps)
    flusher.open(job_id, "audio")
    assert flusher.add(job_id, 0, measurement(0, {"calmness": 0.5}), 0)
    await flusher.aclose()
    assert (await stored(deps, job_id))[job_id][:2] == (1, 1)


async def test_a_row_moved_by_another_writer_is_read_again_and_nothing_is_stored_twice(deps: Deps) -> None:
    """What a flusher knows of a session's row can be stale: another writer of the session (two processes
    during a handover), or a commit whose outcome was lost with its connection."""
    first, second = flusher_of(deps), flusher_of(deps)
    job_id, other = await open_session(deps), await open_session(deps)
    first.open(job_id, "audio")
    first.open(other, "audio")
    second.open(job_id, "audio")
    for i in range(2):
        assert first.add(job_id, i, measurement(i, {"calmness": 0.5}), 0)
    assert (await first.tick()).stored == 2
    for i in range(3):
        assert second.add(job_id, i, measurement(i, {"calmness": 0.5}), 0)
    assert (await second.tick()).stored == 1, "the second writer reads the row: only id 2 is new"
    for i in (2, 3):
        assert first.add(job_id, i, measurement(i, {"joy": 0.5}), 0)
    assert first.add(other, 0, measurement(0, {"joy": 0.5}), 0)
    stale = await first.tick()
    assert (stale.stored, stale.failed) == (0, 2), "the row was not as known: the whole tick is rolled back"
    assert (first.pending(job_id), first.pending(other)) == (2, 1)
    again = await first.tick()
    assert (again.stored, again.failed) == (2, 0), "read again: only id 3 of the session is new"
    found = await stored(deps, job_id, other)
    assert found[job_id][:2] == (4, 4) and found[other][:2] == (1, 1)


async def test_a_long_session_s_stats_written_at_its_end_are_those_of_its_rows(deps: Deps) -> None:
    """Its stats are added up in memory as it runs (more scores than are kept unadded) and written with its
    end: the same as made from its stored rows."""
    names = ["calmness", "joy", "interest", "surprise (positive)", "awe", "doubt"]
    job_id = await open_session(deps)
    live = flusher_of(deps)
    live.open(job_id, "audio")
    for i in range(900):
        assert live.add(job_id, i, measurement(i, {n: ((i * 7 + k * 13) % 97) / 97 for k, n in enumerate(names)}), 0)
        if i % 100 == 99:
            assert (await live.tick()).stored == 100

    async def complete(session: AsyncSession) -> None:
        await end_job(session, deps, job_id, "completed")

    await live.finish(job_id, complete)
    query = text("SELECT name, count, round(mean::numeric, 9), max FROM emotion_stat WHERE job_id = :id ORDER BY name")
    async with deps.sessionmaker() as session:
        written = (await session.execute(query, {"id": job_id})).all()
    async with deps.sessionmaker.begin() as session:
        await live_sessions.restat(session, job_id)
    async with deps.sessionmaker() as session:
        made = (await session.execute(query, {"id": job_id})).all()
    assert len(written) == len(names) and written == made
