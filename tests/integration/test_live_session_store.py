"""A live session's rows in Postgres: measurements flushed in batches are stored once each (a batch written
again after a retry adds nothing), the stats kept across flushes equal the stats of the stored rows, and a
session whose relay stopped beating is ended failed by the reconciler's check with what was stored kept, its
stats made from its rows."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Deps
from app.sessions import flusher, service
from app.store import api_keys, live_sessions
from app.worker.outbox import end_job


def measurement(i: int, scores: dict[str, float]) -> bytes:
    """A v1 audio `measurement.result` as Hume sends it (HUME-V1-FACTS §6, §8)."""
    return json.dumps({
        "type": "measurement.result", "measurement_id": i, "utterance_id": 0, "audio_start_ms": 3000 * i,
        "audio_end_ms": 3000 * (i + 1), "trigger": "interval", "voice_attributes": [],
        "expressions": [{"name": name, "probability": p} for name, p in scores.items()],
    }).encode()  # fmt: skip


async def open_session(deps: Deps) -> uuid.UUID:
    async with deps.sessionmaker.begin() as session:
        key = await api_keys.create(session, name="browser-app", scopes=["session"], tenant="acme")
        principal = await api_keys.find(session, key)
        assert principal is not None
        token, _ = await live_sessions.mint(
            session, api_key_id=principal.key_id, tenant="acme", job_id=uuid.uuid4(), metadata={"room": "a"}, ttl_s=60
        )
    async with deps.sessionmaker.begin() as session:
        redeemed = await live_sessions.redeem(session, token, scope="session")
        assert isinstance(redeemed, live_sessions.Redeemed)
        job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium="audio", request={})
    return job_id


async def stats_of(deps: Deps, job_id: uuid.UUID) -> dict[str, tuple[int, float, float]]:
    async with deps.sessionmaker() as session:
        return {
            name: (n, round(mean, 6), peak)
            for name, n, mean, peak in await session.execute(
                text("SELECT name, count, mean, max FROM emotion_stat WHERE job_id = :id"), {"id": job_id}
            )
        }


async def test_batches_are_stored_once_and_their_stats_add_up(deps: Deps) -> None:
    job_id = await open_session(deps)
    live = flusher.LiveFlusher(deps.sessionmaker, interval_s=60)
    live.open(job_id, "audio")
    first = {0: measurement(0, {"calmness": 0.5, "joy": 0.25}), 1: measurement(1, {"calmness": 0.75})}

    async def tick(batch: dict[int, bytes]) -> int:
        for i, body in batch.items():
            assert live.add(job_id, i, body, 0)
        return (await live.tick()).stored

    assert await tick(first) == 2
    assert await tick(first) == 0, "a batch written again stores nothing"
    second = {1: first[1], 2: measurement(2, {"joy": 0.75}), 3: measurement(3, {"calmness": 1.0})}
    assert await tick(second) == 2
    # v1 lists only what it judged present: a measurement may list no expression at all (HUME-V1-FACTS §6).
    assert live.add(job_id, 4, measurement(4, {}), 0)

    async def complete(session: AsyncSession) -> None:
        await end_job(session, deps, job_id, "completed")

    assert await live.finish(job_id, complete) == 1
    await live.aclose()
    async with deps.sessionmaker() as session:
        status, count = (
            await session.execute(text("SELECT status, num_predictions FROM job WHERE id = :id"), {"id": job_id})
        ).one()
        assert (status, count) == ("completed", 5)
        stored = await session.execute(text("SELECT count(*) FROM prediction WHERE job_id = :id"), {"id": job_id})
        assert stored.scalar_one() == 5
        predictions = (
            await session.execute(text("SELECT predictions FROM model_stat WHERE job_id = :id"), {"id": job_id})
        ).scalar_one()
    kept = await stats_of(deps, job_id)
    assert kept == {"calmness": (3, 0.75, 1.0), "joy": (2, 0.5, 0.75)}
    assert predictions == 5
    # The stats kept in memory across flushes are those of the stored rows.
    async with deps.sessionmaker.begin() as session:
        await live_sessions.restat(session, job_id)
    assert await stats_of(deps, job_id) == kept


async def test_a_session_whose_relay_stopped_ends_failed_with_what_was_stored(deps: Deps) -> None:
    job_id = await open_session(deps)
    live = flusher.LiveFlusher(deps.sessionmaker, interval_s=60)
    live.open(job_id, "audio")
    assert live.add(job_id, 0, measurement(0, {"calmness": 0.5}), 0)
    assert (await live.tick()).stored == 1
    await live.aclose()  # its process goes away
    assert await service.end_abandoned(deps) == 0, "a session beating recently is left alone"
    async with deps.sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE live_session SET heartbeat_at = now() - interval '2 minutes' WHERE job_id = :id"),
            {"id": job_id},
        )
    assert await service.end_abandoned(deps) == 1
    async with deps.sessionmaker() as session:
        status, code, count = (
            await session.execute(
                text("SELECT status, error_code, num_predictions FROM job WHERE id = :id"), {"id": job_id}
            )
        ).one()
        stored = await session.execute(text("SELECT count(*) FROM prediction WHERE job_id = :id"), {"id": job_id})
        assert stored.scalar_one() == 1
    assert (status, code, count) == ("failed", "relay_lost", 1)
    # Its stats were in the lost process's memory: made again from its stored rows.
    assert await stats_of(deps, job_id) == {"calmness": (1, 0.5, 0.5)}
    assert await service.end_abandoned(deps) == 0


async def test_a_token_opens_one_session(deps: Deps) -> None:
    async with deps.sessionmaker.begin() as session:
        key = await api_keys.create(session, name="browser-app", scopes=["read"], tenant="acme")
        principal = await api_keys.find(session, key)
        assert principal is not None
        token, _ = await live_sessions.mint(
            session, api_key_id=principal.key_id, tenant="acme", job_id=uuid.uuid4(), metadata={}, ttl_s=60
        )
    async with deps.sessionmaker.begin() as session:
        refused = await live_sessions.redeem(session, token, scope="session")
    assert refused == live_sessions.Refused("scope"), "a key without the scope (taken away since) opens nothing"
    async with deps.sessionmaker.begin() as session:
        again = await live_sessions.redeem(session, token, scope="session")
    assert again == live_sessions.Refused("used")
