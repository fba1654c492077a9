"""Analyst queries at the store layer: a one-hour job's summary, and over 10,000,000 stored predictions (four
tenants, six months, 10,000 jobs: predictions partitioned by tenant and month, migration 0018) the top-emotion
query across jobs, one job's summary and one job's predictions page.

Baselines from the same run and connection pool: a `SELECT 1` round trip for one job's reads, and
`SELECT count(*) FROM prediction` (what any query that touched every prediction would at least cost)
for the top-emotion query.

The predictions are made by SQL (each job a window of a pool of random score arrays, 500 to 1,500 face
predictions a job), a (tenant, month) at a time into partitions set UNLOGGED first (a bench's data needs no
WAL; reads are the same), and their per-source stats from the same pool in Python with prefix sums, so
generating them takes minutes, not an ingest of 300 hours of media. The time it took is printed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.batch import prediction_import as importer
from app.hume.emotions import EXPRESSIONS_48
from app.store import analytics, jobs
from app.store import prediction_partitions as partitions
from app.store.db import driver_connection, make_engine, make_sessionmaker
from bench import payloads
from bench.__main__ import Context

POOL = 1000
JOBS = 10_000
TARGET_PREDICTIONS = 10_000_000
TENANTS = ("acme", "globex", "initech", "umbrella")
MONTHS = 6
TEAMS = ("research", "support", "sales", "ops")


async def _p50_ms(call: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(min(20, n)):
        await call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass(frozen=True)
class Plan:
    job_id: uuid.UUID
    tenant: str
    month: date
    created_at: datetime
    n: int
    start: int


def _start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def _plans(rng: random.Random, now: datetime) -> list[Plan]:
    sizes = [500 + rng.randrange(1001) for _ in range(JOBS)]
    scale = TARGET_PREDICTIONS / sum(sizes)
    sizes = [int(n * scale) for n in sizes]
    sizes[-1] += TARGET_PREDICTIONS - sum(sizes)
    months = [partitions.month_of(now)]
    while len(months) < MONTHS:
        months.insert(0, partitions.month_of(_start(months[0]) - timedelta(days=1)))
    plans = []
    for k, n in enumerate(sizes):
        month = months[rng.randrange(MONTHS)]
        begin = _start(month)
        # Inside the month, and not after now (less an hour) in the current one.
        span = min(timedelta(days=27), now - timedelta(hours=1) - begin) if month == months[-1] else timedelta(days=27)
        created = begin + span * rng.random()
        plans.append(Plan(uuid.uuid4(), TENANTS[k % len(TENANTS)], month, created, n, rng.randrange(POOL)))
    return plans


async def _many_predictions(url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[list[Plan], float]:
    """The 10M predictions with their jobs, sources and stats; (the plans, seconds it took)."""
    started = time.perf_counter()
    rng = random.Random(42)
    width = len(EXPRESSIONS_48)
    pool = [[rng.random() ** 2 for _ in range(width)] for _ in range(POOL)]
    plans = _plans(rng, datetime.now(UTC))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as ddl:
        for tenant in TENANTS:
            await partitions.ensure(ddl, tenant, sorted({p.month for p in plans}))
            for month in sorted({p.month for p in plans}):
                table = sql.Identifier(partitions.SCHEMA, partitions.month_table(tenant, month))
                await ddl.execute(sql.SQL("ALTER TABLE {} SET UNLOGGED").format(table))
    async with sessionmaker.begin() as session:
        conn = await driver_connection(session)
        async with conn.cursor() as cur:
            await cur.execute("CREATE UNLOGGED TABLE bench_pool (i int PRIMARY KEY, scores real[])")
            async with cur.copy("COPY bench_pool (i, scores) FROM STDIN") as copy:
                for i, scores in enumerate(pool):
                    await copy.write_row((i, scores))
            async with cur.copy("COPY job (id, kind, status, tenant, created_at, metadata) FROM STDIN") as copy:
                for k, plan in enumerate(plans):
                    await copy.write_row((plan.job_id, "batch", "completed", plan.tenant, plan.created_at,
                                          f'{{"team": "{TEAMS[k % len(TEAMS)]}"}}'))  # fmt: skip
            await cur.execute(
                "INSERT INTO source (job_id, position, kind, url)"
                " SELECT id, 0, 'url', 'https://media.example.com/' || id || '.mp4' FROM job WHERE id = ANY(%s)",
                ([p.job_id for p in plans],),
            )
            await cur.execute(
                "CREATE UNLOGGED TABLE bench_plan (job_id uuid, tenant text, month date, stored_at timestamptz,"
                " n int, start int)"
            )
            async with cur.copy("COPY bench_plan FROM STDIN") as copy:
                for p in plans:
                    await copy.write_row((p.job_id, p.tenant, p.month, p.created_at + timedelta(seconds=1), p.n,
                                          p.start))  # fmt: skip
    # A (tenant, month) a statement, each its own transaction: one partition's rows at a time.
    for tenant in TENANTS:
        for month in sorted({p.month for p in plans}):
            async with sessionmaker.begin() as session:
                await session.execute(
                    text(
                        f"""
                        INSERT INTO prediction (job_id, tenant, stored_at, source_id, file, model, group_id, frame,
                                                time_begin, time_end, scores)
                        SELECT p.job_id, p.tenant, p.stored_at, s.id, 'media.mp4', 'face', 'unknown', k, k / 3.0,
                               k / 3.0, pool.scores
                        FROM bench_plan p JOIN source s ON s.job_id = p.job_id
                        CROSS JOIN LATERAL generate_series(0, p.n - 1) AS k
                        JOIN bench_pool pool ON pool.i = (p.start + k) % {POOL}
                        WHERE p.tenant = :tenant AND p.month = :month
                        """
                    ),
                    {"tenant": tenant, "month": month},
                )
    async with sessionmaker.begin() as session:
        conn = await driver_connection(session)
        async with conn.cursor() as cur:
            # Stats of each job's window of the pool: prefix sums for means, slices for maxima.
            columns = [[row[c] for row in pool] * 3 for c in range(width)]
            prefix = []
            for col in columns:
                acc = [0.0]
                for v in col:
                    acc.append(acc[-1] + v)
                prefix.append(acc)
            await cur.execute("SELECT job_id, id FROM source")
            rows: list[Any] = await cur.fetchall()
            source_ids: dict[uuid.UUID, int] = {row[0]: row[1] for row in rows}
            async with cur.copy(
                "COPY emotion_stat (job_id, source_id, model, position, name, count, mean, max) FROM STDIN"
            ) as copy:
                for plan in plans:
                    full, rest = divmod(plan.n, POOL)
                    start = plan.start
                    for c, name in enumerate(EXPRESSIONS_48):
                        sums = prefix[c]
                        total = full * sums[POOL] + sums[start + rest] - sums[start]
                        peak = max(columns[c][:POOL] if full else columns[c][start : start + rest])
                        await copy.write_row((plan.job_id, source_ids[plan.job_id], "face", c, name, plan.n,
                                              total / plan.n, peak))  # fmt: skip
            async with cur.copy("COPY model_stat (job_id, source_id, model, predictions) FROM STDIN") as copy:
                for plan in plans:
                    await copy.write_row((plan.job_id, source_ids[plan.job_id], "face", plan.n))
            await cur.execute("DROP TABLE bench_plan, bench_pool")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as maintenance:
        await maintenance.execute("VACUUM (ANALYZE) prediction")
        await maintenance.execute("ANALYZE emotion_stat")
        await maintenance.execute("ANALYZE job")
    return plans, time.perf_counter() - started


async def _run(url: str) -> dict[str, float]:
    engine = make_engine(url, pool_size=2)
    sessionmaker = make_sessionmaker(engine)
    out: dict[str, float] = {}
    try:
        job_id, out["one_hour_predictions"] = await importer.import_document(
            sessionmaker, payloads.one_hour(), url=None, name="one-hour.json"
        )
        async with sessionmaker() as session:
            await session.execute(text("ANALYZE"))

            async def select_1() -> None:
                await session.execute(text("SELECT 1"))

            async def summary() -> None:
                await analytics.summary(session, job_id)

            joy = await analytics.emotion_position(session, "face", "Joy")
            assert joy is not None
            middle = (
                await session.execute(text("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM prediction"))
            ).scalar_one()
            one_hour = await jobs.get(session, job_id)
            assert one_hour is not None
            scope = analytics.JobScope.of(one_hour)  # as the API's routes name it
            filt = analytics.PredictionFilter(job_id=job_id, scope=scope)

            async def timeline() -> None:
                await analytics.timelines(
                    session, job_id, model="face", positions=[joy], bucket_s=1.0, by_group=True, scope=scope
                )

            async def page() -> None:
                await analytics.predictions_page(session, filt, after_id=int(middle), limit=500)

            out["select_1"] = await _p50_ms(select_1, 500)
            out["summary"] = await _p50_ms(summary, 500)
            out["timeline"] = await _p50_ms(timeline, 50)
            out["page"] = await _p50_ms(page, 100)
        plans, out["generate_s"] = await _many_predictions(url, sessionmaker)
        out["predictions"] = float(sum(p.n for p in plans))
        sample = plans[:: len(plans) // 100][:100]  # jobs of every tenant and month
        async with sessionmaker() as session:
            found = await session.execute(
                text(
                    "SELECT job_id, percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM prediction"
                    " WHERE job_id = ANY(CAST(:ids AS uuid[])) GROUP BY job_id"
                ),
                {"ids": "{" + ",".join(str(p.job_id) for p in sample) + "}"},
            )
            middles: dict[uuid.UUID, int] = {job_id: int(middle) for job_id, middle in found}
            sampled = itertools.cycle(sample)

            async def count_all() -> None:
                await session.execute(text("SELECT count(*) FROM prediction"))

            async def top() -> None:
                await analytics.top_emotion(session, model="face", emotion="Anger", limit=20)

            async def top_tenant() -> None:
                await analytics.top_emotion(session, model="face", emotion="Anger", limit=20, tenant="globex")

            async def top_filtered() -> None:
                await analytics.top_emotion(
                    session, model="face", emotion="Anger", limit=20, by="max", metadata={"team": "research"}
                )

            async def job_summary() -> None:
                await analytics.summary(session, next(sampled).job_id)

            async def job_page() -> None:
                # As GET /v1/jobs/{id}/predictions asks: the job's tenant and creation named (JobScope.of).
                plan = next(sampled)
                scope = analytics.JobScope.created(plan.tenant, plan.created_at)
                filt = analytics.PredictionFilter(job_id=plan.job_id, scope=scope)
                await analytics.predictions_page(session, filt, after_id=middles[plan.job_id], limit=500)

            out["count_all"] = await _p50_ms(count_all, 3)
            out["top"] = await _p50_ms(top, 200)
            out["top_tenant"] = await _p50_ms(top_tenant, 200)
            out["top_filtered"] = await _p50_ms(top_filtered, 200)
            out["job_summary"] = await _p50_ms(job_summary, 200)
            out["job_page"] = await _p50_ms(job_page, 100)
            out["select_1_after"] = await _p50_ms(select_1, 500)
    finally:
        await engine.dispose()
    return out


def run(ctx: Context) -> None:
    with ctx.database() as url:
        figures = asyncio.run(_run(url))
    ctx.report(
        "summary_1h_job_p50", figures["summary"], "ms", baseline=figures["select_1"], baseline_name="select_1_p50"
    )
    ctx.report(
        "timeline_1h_job_p50", figures["timeline"], "ms", baseline=figures["select_1"], baseline_name="select_1_p50"
    )
    ctx.report(
        "predictions_page_500_p50", figures["page"], "ms", baseline=figures["select_1"], baseline_name="select_1_p50"
    )
    n = int(figures["predictions"])
    print(
        f"bench_queries: {n:,} predictions ({len(TENANTS)} tenants x {MONTHS} months, {JOBS:,} jobs) generated in "
        f"{figures['generate_s']:.0f} s",
        flush=True,
    )
    for name, key in (
        (f"top_emotion_{n // 1000}k_predictions_p50", "top"),
        (f"top_emotion_one_tenant_{n // 1000}k_p50", "top_tenant"),
        (f"top_emotion_by_max_metadata_filter_{n // 1000}k_p50", "top_filtered"),
    ):
        ctx.report(
            name, figures[key], "ms", baseline=figures["count_all"], baseline_name="select_count_all_predictions_p50"
        )
    for name, key in (
        (f"job_summary_{n // 1000}k_predictions_p50", "job_summary"),
        (f"predictions_page_500_{n // 1000}k_p50", "job_page"),
    ):
        ctx.report(name, figures[key], "ms", baseline=figures["select_1_after"], baseline_name="select_1_p50")
