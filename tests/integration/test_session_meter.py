"""A live session's Hume bill in the store (app/usage/session_meter.py, app/store/hume_usage.py), real Postgres:
its reservation grows by the same rule as a file request's, raced against file requests of its tenant it never
passes the day's limit, its end turns the reservation into the estimate, and a session whose relay died gets
its run read from Hume like any other."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from sqlalchemy import text

from app.deps import Deps
from app.hume import billing
from app.sessions import service
from app.store import api_keys, hume_usage, jobs, live_sessions
from app.store.hume_usage import DayBudget
from app.usage import session_meter
from app.usage.session_meter import SessionMeter

SECOND = 32_000  # bytes of one second of realtime audio (16 kHz s16le mono, HUME-V1-FACTS §3)


def with_limit(deps: Deps, seconds: int) -> Deps:
    return dataclasses.replace(deps, settings=deps.settings.replace(hume_tenant_daily_seconds=seconds))


async def session_job(deps: Deps, tenant: str = "acme") -> uuid.UUID:
    """A live session's job as the relay starts it (token minted, redeemed, job and its source created)."""
    async with deps.sessionmaker.begin() as session:
        key = await api_keys.create(session, name="browser-app", scopes=["session"], tenant=tenant)
        principal = await api_keys.find(session, key)
        assert principal is not None
        token, _ = await live_sessions.mint(
            session, api_key_id=principal.key_id, tenant=tenant, job_id=uuid.uuid4(), metadata={}, ttl_s=60
        )
    async with deps.sessionmaker.begin() as session:
        redeemed = await live_sessions.redeem(session, token, scope="session")
        assert isinstance(redeemed, live_sessions.Redeemed)
        job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium="audio", request={})
    return job_id


async def open_meter(deps: Deps, job_id: uuid.UUID) -> SessionMeter:
    async with deps.sessionmaker.begin() as session:
        meter = await session_meter.open_meter(session, deps, job_id, "audio")
    assert isinstance(meter, SessionMeter)
    return meter


async def spent(deps: Deps, tenant: str = "acme") -> float:
    async with deps.sessionmaker() as session:
        return (await hume_usage.tenant_today(session, tenant, default_limit=0)).spent


async def usage_row(deps: Deps, job_id: uuid.UUID) -> tuple[float, str, str | None]:
    async with deps.sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT seconds, billing, run_id FROM hume_usage WHERE job_id = :j"), {"j": job_id}
            )
        ).one()
    return float(row.seconds), row.billing, row.run_id


async def admit_seconds(meter: SessionMeter, seconds: int) -> DayBudget | None:
    """`seconds` one-second frames, or the refusal of the first that does not fit."""
    for _ in range(seconds):
        refused = await meter.admit(SECOND)
        if refused is not None:
            return refused
    return None


async def test_a_session_grows_by_steps_then_by_what_a_frame_needs(deps: Deps) -> None:
    """A day of 75 s: the session's minimum (10 s) at open, a step of 60 s when the 11th second comes, then,
    the next step no longer fitting, one second at a time up to the limit; the 76th second is refused."""
    deps = with_limit(deps, 75)
    meter = await open_meter(deps, await session_job(deps))
    assert await spent(deps) == billing.MIN_RUN_SECONDS
    assert await admit_seconds(meter, 10) is None and meter.reserved_s == 10.0, "the minimum covers 10 s"
    assert await admit_seconds(meter, 1) is None and meter.reserved_s == 70.0
    assert await admit_seconds(meter, 64) is None and meter.reserved_s == 75.0 and await spent(deps) == 75.0
    refused = await meter.admit(SECOND)
    assert isinstance(refused, DayBudget) and (refused.limit, refused.spent) == (75, 75.0)
    assert meter.media_s == 75.0, "a refused frame is not counted"


async def test_sessions_and_file_requests_of_a_tenant_share_its_day(deps: Deps) -> None:
    """Two sessions taking a second at a time and file requests of 10 s, all at once, against 100 s: the day's
    total never passes it, and what each session was granted is what the day counts for it."""
    deps = with_limit(deps, 100)
    meters = [await open_meter(deps, await session_job(deps)) for _ in range(2)]
    async with deps.sessionmaker.begin() as session:
        file_job = await jobs.create(session, kind="batch", backend="v1", status="in_progress", request={},
                                     tenant="acme")  # fmt: skip

    async def file_request(i: int) -> int | DayBudget:
        async with deps.sessionmaker.begin() as session:
            return await hume_usage.reserve(session, file_job.id, 0, "audio", i, 10.0, default_limit=100)

    results = await asyncio.gather(*(admit_seconds(m, 60) for m in meters), *(file_request(i) for i in range(8)))
    files = sum(10.0 for r in results[2:] if isinstance(r, int))
    assert await spent(deps) == pytest.approx(sum(m.reserved_s for m in meters) + files)
    assert await spent(deps) <= 100.0
    assert [r for r in results if isinstance(r, DayBudget)], "the day was spent"


async def test_a_session_s_end_turns_its_reservation_into_the_estimate(deps: Deps) -> None:
    """12.5 s taken in, 70 s reserved: the usage row and the day count 12.5 s, and the run Hume named is due
    to be read; without a run id the estimate stands (nothing to read)."""
    meter = await open_meter(deps, await session_job(deps))
    assert await admit_seconds(meter, 12) is None and await meter.admit(SECOND // 2) is None
    async with deps.sessionmaker.begin() as session:
        await meter.owns(session, "3f0c8a4e-0000-4000-8000-000000000001")
    assert await spent(deps) == 70.0
    await meter.end()
    assert await usage_row(deps, meter.job_id) == (12.5, "pending", "3f0c8a4e-0000-4000-8000-000000000001")
    assert await spent(deps) == 12.5

    unnamed = await open_meter(deps, await session_job(deps))
    assert await unnamed.admit(SECOND) is None
    await unnamed.end()
    assert await usage_row(deps, unnamed.job_id) == (10.0, "estimate", None)


async def test_a_session_whose_relay_died_has_its_run_read(deps: Deps) -> None:
    """The reconciler ends a session whose relay stopped beating: its reservation stands as the estimate and
    the run Hume named is queued to be read, so Hume's figure replaces it as for any run."""
    job_id = await session_job(deps)
    meter = await open_meter(deps, job_id)
    async with deps.sessionmaker.begin() as session:
        await meter.owns(session, "3f0c8a4e-0000-4000-8000-000000000002")
        await session.execute(
            text("UPDATE live_session SET heartbeat_at = now() - interval '2 minutes' WHERE job_id = :id"),
            {"id": job_id},
        )
    assert await service.end_abandoned(deps) == 1
    assert await usage_row(deps, job_id) == (10.0, "pending", "3f0c8a4e-0000-4000-8000-000000000002")
    async with deps.sessionmaker() as session:
        assert await hume_usage.next_read_in(session) is not None
