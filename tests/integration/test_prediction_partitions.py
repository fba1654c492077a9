"""Predictions partitioned by tenant and month (migration 0018): ingest lands rows in their tenant's month, a new
tenant needs nothing made beforehand (also when several of its jobs are stored at once), rows stored while a
tenant had no partition join it at the next upkeep, and retention drops a tenant's old month (the partition,
not rows one by one) while marking its jobs and leaving other tenants' rows alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.prediction_rows import EmotionScore, PredictionRow
from app.hume.emotions import EXPRESSIONS_48
from app.store import analytics, ingest, jobs
from app.store import prediction_partitions as partitions

Sessionmaker = async_sessionmaker[AsyncSession]
OLD = date(2025, 1, 1)


def rows(n: int, level: float = 0.5) -> Iterator[PredictionRow]:
    for i in range(n):
        scores = [EmotionScore(name, level) for name in EXPRESSIONS_48]
        yield PredictionRow(
            source_index=0, file=None, model="prosody", group_id=None, frame=None, time_begin=float(i),
            time_end=float(i + 1), prob=None, box=None, text=None, position_begin=None, position_end=None,
            confidence=None, speaker_confidence=None, scores=scores, extras=None,
        )  # fmt: skip


async def stored_job(sessionmaker: Sessionmaker, tenant: str, n: int = 5) -> uuid.UUID:
    async with sessionmaker.begin() as session:
        job = await jobs.create(session, kind="batch", status="completed", tenant=tenant)
    async with sessionmaker.begin() as session:
        await ingest.ingest(session, job.id, [ingest.SourceRecord(kind="url", url="https://m.example/a.wav")], rows(n))
    return job.id


async def where(sessionmaker: Sessionmaker, job_id: uuid.UUID) -> dict[str, int]:
    """The partitions holding the job's rows, with how many each."""
    async with sessionmaker() as session:
        found = await session.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM prediction WHERE job_id = :j GROUP BY 1"),
            {"j": job_id},
        )
        return {table: int(n) for table, n in found}


def qualified(table: str) -> str:
    return f"{partitions.SCHEMA}.{table}"


async def exists(sessionmaker: Sessionmaker, table: str) -> bool:
    async with sessionmaker() as session:
        found = await session.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": qualified(table)})
        return bool(found.scalar())


async def test_a_new_tenants_rows_land_in_its_month_with_nothing_made_before(sessionmaker: Sessionmaker) -> None:
    odd = "Zeta Corp / Ünïcode 'quoted' tenant"
    assert not await exists(sessionmaker, partitions.tenant_table(odd))
    acme = await stored_job(sessionmaker, "acme", 7)
    zeta = await stored_job(sessionmaker, odd, 3)
    month = partitions.month_of(datetime.now(UTC))
    assert await where(sessionmaker, acme) == {qualified(partitions.month_table("acme", month)): 7}
    assert await where(sessionmaker, zeta) == {qualified(partitions.month_table(odd, month)): 3}
    async with sessionmaker() as session:
        stored = (await session.execute(text("SELECT min(stored_at), max(stored_at), min(tenant), max(tenant)"
                                             " FROM prediction WHERE job_id = :j"), {"j": zeta})).one()  # fmt: skip
        created = (await session.execute(text("SELECT created_at FROM job WHERE id = :j"), {"j": zeta})).scalar_one()
        default = await session.execute(text(f"SELECT count(*) FROM {qualified(partitions.DEFAULT_PARTITION)}"))
        assert default.scalar_one() == 0
    # One transaction's rows carry its start: one month, never before the job existed.
    assert stored[0] == stored[1] >= created
    assert stored[2] == stored[3] == odd


async def test_concurrent_first_ingests_of_a_new_tenant_all_succeed(sessionmaker: Sessionmaker) -> None:
    tenant = f"burst-{uuid.uuid4().hex[:6]}"
    stored = await asyncio.gather(*(stored_job(sessionmaker, tenant, 4) for _ in range(4)))
    month_table = qualified(partitions.month_table(tenant, partitions.month_of(datetime.now(UTC))))
    for job_id in stored:
        assert await where(sessionmaker, job_id) == {month_table: 4}


async def test_rows_stored_before_their_tenant_had_a_partition_join_it(
    sessionmaker: Sessionmaker, database_url: str
) -> None:
    """A tenant whose partition could not be made (a lock not granted) has its rows kept in the default
    partition; the next upkeep makes the partition and moves them into it."""
    job_id = await stored_job(sessionmaker, "acme", 2)
    async with sessionmaker.begin() as session:
        late = await jobs.create(session, kind="batch", status="completed", tenant="late")
        await session.execute(
            text("INSERT INTO prediction (job_id, tenant, source_id, model, scores)"
                 " SELECT :j, 'late', source_id, model, scores FROM prediction WHERE job_id = :from"),
            {"j": late.id, "from": job_id},
        )  # fmt: skip
    assert await where(sessionmaker, late.id) == {qualified(partitions.DEFAULT_PARTITION): 2}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        done = await partitions.upkeep(conn, default_days=0)
    month = partitions.month_of(datetime.now(UTC))
    assert partitions.month_table("late", month) in done.made
    assert await where(sessionmaker, late.id) == {qualified(partitions.month_table("late", month)): 2}


async def test_retention_drops_a_tenants_old_month_and_nothing_else(
    sessionmaker: Sessionmaker, database_url: str
) -> None:
    old_acme = await stored_job(sessionmaker, "acme", 6)
    new_acme = await stored_job(sessionmaker, "acme", 2)
    old_beta = await stored_job(sessionmaker, "beta", 4)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for tenant in ("acme", "beta"):
            await partitions.ensure(conn, tenant, [OLD])
        # As if stored in January 2025: the rows move to that month's partitions.
        await conn.execute(
            "UPDATE prediction SET stored_at = '2025-01-15T12:00:00Z' WHERE job_id = ANY(%s)", ([old_acme, old_beta],)
        )
        await conn.execute("INSERT INTO prediction_retention (tenant, days) VALUES ('acme', 90)")
        done = await partitions.upkeep(conn, default_days=0)
    assert done.dropped == [partitions.month_table("acme", OLD)]
    assert done.expired_jobs == 1
    assert not await exists(sessionmaker, partitions.month_table("acme", OLD))
    assert await where(sessionmaker, old_acme) == {}
    # The newer month of the same tenant, and the other tenant's old month (kept for good), stay whole.
    assert sum((await where(sessionmaker, new_acme)).values()) == 2
    assert await where(sessionmaker, old_beta) == {qualified(partitions.month_table("beta", OLD)): 4}
    async with sessionmaker() as session:
        flags = await session.execute(
            text("SELECT id, predictions_expired_at IS NOT NULL FROM job WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": "{" + ",".join(map(str, (old_acme, new_acme, old_beta))) + "}"},
        )
        marked: dict[uuid.UUID, bool] = {job_id: flag for job_id, flag in flags}
        # The expired job's summary is kept: it is read from the stats written at ingest.
        summary = await analytics.summary(session, old_acme)
    assert marked == {old_acme: True, new_acme: False, old_beta: False}
    assert summary["prosody"]["predictions"] == 6
    assert summary["prosody"]["emotions"][0]["mean"] == 0.5
