"""Hume-metered seconds in the store (app/store/hume_usage.py) and their settling by Hume's answer
(app/v1/hume_spend.py): reservations raced from two connection pools, as from two worker processes, never pass
a tenant's daily limit; an error answer gives the seconds back, no answer keeps them. Real Postgres, the real
v1 client against the emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from functools import partial

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.hume.errors import HumeMediaRefused, HumeTransientError
from app.hume.expression_client import ExpressionClient
from app.media.audio_chunks import wav_header
from app.store import hume_usage, jobs
from app.store.db import make_engine, make_sessionmaker
from app.store.hume_usage import DayBudget
from app.usage.budget import BudgetExhausted
from app.v1.hume_spend import metered
from tests.conftest import EMULATOR_KEY


async def _job(sessionmaker: async_sessionmaker[AsyncSession], tenant: str) -> uuid.UUID:
    async with sessionmaker.begin() as session:
        job = await jobs.create(session, kind="batch", backend="v1", status="in_progress", request={}, tenant=tenant)
    return job.id


async def _spent(sessionmaker: async_sessionmaker[AsyncSession], tenant: str) -> float:
    async with sessionmaker() as session:
        return (await hume_usage.tenant_today(session, tenant, default_limit=0)).spent


async def test_raced_reservations_never_pass_the_tenant_limit(database_url: str) -> None:
    """40 reservations of 10 s for two jobs of one tenant, from two pools at once, against 55 s: five pass.
    Another tenant's reservations in the same race are charged to its own day."""
    engines = [make_engine(database_url, pool_size=8) for _ in range(2)]
    try:
        makers = [make_sessionmaker(engine) for engine in engines]
        jobs_a = [await _job(makers[0], "a"), await _job(makers[0], "a")]
        job_b = await _job(makers[0], "b")

        async def one(i: int, job_id: uuid.UUID) -> int | DayBudget:
            async with makers[i % 2].begin() as session:
                return await hume_usage.reserve(session, job_id, 0, "audio", i, 10.0, default_limit=55)

        results = await asyncio.gather(*(one(i, jobs_a[i // 2 % 2]) for i in range(40)), one(99, job_b))
        passed = [r for r in results[:40] if isinstance(r, int)]
        refused = [r for r in results[:40] if isinstance(r, DayBudget)]
        assert len(passed) == 5 and len(refused) == 35
        assert all(r.tenant == "a" and r.limit == 55 and r.spent <= 55 for r in refused)
        assert isinstance(results[40], int), "tenant b spends its own budget"
        assert await _spent(makers[0], "a") == pytest.approx(50.0)
        assert await _spent(makers[0], "b") == pytest.approx(10.0)
        async with makers[0]() as session:
            by_job = await hume_usage.job_seconds(session, [*jobs_a, job_b])
        assert sum(by_job.get(j, 0.0) for j in jobs_a) == pytest.approx(50.0) and by_job[job_b] == pytest.approx(10.0)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_an_override_wins_over_the_setting_and_zero_means_no_limit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    job_id = await _job(sessionmaker, "c")
    async with sessionmaker.begin() as session:
        await hume_usage.set_tenant_limit(session, "c", 15)
        assert isinstance(await hume_usage.reserve(session, job_id, 0, "video", 0, 10.0, default_limit=1000), int)
        refused = await hume_usage.reserve(session, job_id, 0, "video", 1, 10.0, default_limit=1000)
        assert isinstance(refused, DayBudget) and refused.limit == 15
        await hume_usage.set_tenant_limit(session, "c", 0)
        for chunk in range(1, 4):
            assert isinstance(await hume_usage.reserve(session, job_id, 0, "video", chunk, 10.0, default_limit=1), int)
        await hume_usage.set_tenant_limit(session, "c", None)
        today = await hume_usage.tenant_today(session, "c", default_limit=1)
    assert today == DayBudget("c", today.day, 1, 40.0, override=False)


def _wav(seconds: float) -> bytes:
    pcm = b"\x10\x00" * int(16_000 * seconds)
    return wav_header(len(pcm)) + pcm


async def test_hume_answer_settles_the_reservation(deps: Deps, emulator: EmulatorServer) -> None:
    """A result bills the reservation under Hume's run id; Hume's refusal (billed 0, HUME-V1-FACTS §6) gives it
    back; a request that got no answer may have been measured and billed, so it keeps it."""
    job_id = await _job(deps.sessionmaker, "d")
    deps = dataclasses.replace(deps, settings=deps.settings.replace(hume_tenant_daily_seconds=30))
    client = ExpressionClient(api_key=EMULATOR_KEY, base_url=emulator.cloud_url, max_retries=0, timeout_s=0.5)
    try:
        measured = await metered(deps, job_id, 0, "audio", 0, 10.0, partial(client.measure_audio, _wav(1.0)))
        assert await _spent(deps.sessionmaker, "d") == pytest.approx(10.0)

        with pytest.raises(HumeMediaRefused):  # an odd-length body: audio_decode_failed (HUME-V1-FACTS §4)
            await metered(deps, job_id, 0, "audio", 1, 10.0, partial(client.measure_audio, b"\x01\x02\x03"))
        assert await _spent(deps.sessionmaker, "d") == pytest.approx(10.0)

        emulator.set_faults(path="/v1/expression/audio/file", delay_s=2.0, times=1)
        with pytest.raises(HumeTransientError):
            await metered(deps, job_id, 0, "audio", 2, 10.0, partial(client.measure_audio, _wav(1.0)))
        assert await _spent(deps.sessionmaker, "d") == pytest.approx(20.0)

        with pytest.raises(BudgetExhausted) as refused:
            await metered(deps, job_id, 0, "audio", 3, 10.5, partial(client.measure_audio, _wav(1.0)))
        assert "'d' has spent 20.0 of its 30" in str(refused.value) and refused.value.code == "hume_budget_exhausted"
    finally:
        await client.aclose()
    async with deps.sessionmaker() as session:
        usage = list(await session.execute(
            text("SELECT chunk, state, run_id FROM hume_usage WHERE job_id = :j ORDER BY chunk"), {"j": job_id}
        ))  # fmt: skip
    assert [(u.chunk, u.state, u.run_id) for u in usage] == [(0, "billed", measured.run_id), (2, "sent", None)]
