"""Analyst queries at the store layer: a one-hour job's summary, and the top-emotion query over 1M predictions.

Baselines from the same run and connection pool: a `SELECT 1` round trip for the summary, and
`SELECT count(*) FROM prediction` (what any query that touched every prediction would at least cost)
for the top-emotion query.

The 1M predictions are made by SQL (1,000 jobs of 500 to 1,500 face predictions, each job a window of a
pool of random score arrays), and their per-source stats from the same pool in Python with prefix sums,
so generating them takes seconds, not an ingest of 30 hours of media.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.batch import prediction_import as importer
from app.hume.emotions import EXPRESSIONS_48
from app.store import analytics as queries
from app.store.db import driver_connection, make_engine, make_sessionmaker
from bench import payloads
from bench.__main__ import Context

POOL = 1000
JOBS = 1000
TARGET_PREDICTIONS = 1_000_000


async def _p50_ms(call: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(min(20, n)):
        await call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _many_predictions(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    rng = random.Random(42)
    width = len(EXPRESSIONS_48)
    pool = [[rng.random() ** 2 for _ in range(width)] for _ in range(POOL)]
    sizes = [500 + rng.randrange(1001) for _ in range(JOBS)]
    scale = TARGET_PREDICTIONS / sum(sizes)
    sizes = [int(n * scale) for n in sizes]
    sizes[-1] += TARGET_PREDICTIONS - sum(sizes)
    starts = [rng.randrange(POOL) for _ in range(JOBS)]
    job_ids = [uuid.uuid4() for _ in range(JOBS)]
    teams = ("research", "support", "sales", "ops")
    async with sessionmaker.begin() as session:
        conn = await driver_connection(session)
        async with conn.cursor() as cur:
            await cur.execute("CREATE TEMP TABLE pool (i int PRIMARY KEY, scores real[]) ON COMMIT DROP")
            async with cur.copy("COPY pool (i, scores) FROM STDIN") as copy:
                for i, scores in enumerate(pool):
                    await copy.write_row((i, scores))
            async with cur.copy("COPY job (id, kind, status, metadata) FROM STDIN") as copy:
                for k, job_id in enumerate(job_ids):
                    await copy.write_row((job_id, "batch", "completed", f'{{"team": "{teams[k % 4]}"}}'))
            await cur.execute(
                "INSERT INTO source (job_id, position, kind, url)"
                " SELECT id, 0, 'url', 'https://media.example.com/' || id || '.mp4' FROM job WHERE id = ANY(%s)",
                (job_ids,),
            )
            await cur.execute("CREATE TEMP TABLE plan (job_id uuid, n int, start int) ON COMMIT DROP")
            async with cur.copy("COPY plan FROM STDIN") as copy:
                for job_id, n, start in zip(job_ids, sizes, starts, strict=True):
                    await copy.write_row((job_id, n, start))
            await cur.execute(
                f"""
                INSERT INTO prediction (job_id, source_id, file, model, group_id, frame, time_begin, time_end, scores)
                SELECT p.job_id, s.id, 'media.mp4', 'face', 'unknown', k, k / 3.0, k / 3.0, pool.scores
                FROM plan p JOIN source s ON s.job_id = p.job_id
                CROSS JOIN LATERAL generate_series(0, p.n - 1) AS k
                JOIN pool ON pool.i = (p.start + k) % {POOL}
                """
            )
            # Stats of each job's window of the pool: prefix sums for means, slices for maxima.
            columns = [[row[c] for row in pool] * 3 for c in range(width)]
            prefix = []
            for col in columns:
                acc = [0.0]
                for v in col:
                    acc.append(acc[-1] + v)
                prefix.append(acc)
            await cur.execute("SELECT job_id, id FROM source WHERE job_id = ANY(%s)", (job_ids,))
            rows: list[Any] = await cur.fetchall()
            source_ids: dict[uuid.UUID, int] = {row[0]: row[1] for row in rows}
            async with cur.copy(
                "COPY emotion_stat (job_id, source_id, model, position, name, count, mean, max) FROM STDIN"
            ) as copy:
                for job_id, n, start in zip(job_ids, sizes, starts, strict=True):
                    full, rest = divmod(n, POOL)
                    for c, name in enumerate(EXPRESSIONS_48):
                        p = prefix[c]
                        total = full * p[POOL] + p[start + rest] - p[start]
                        peak = max(columns[c][:POOL] if full else columns[c][start : start + rest])
                        await copy.write_row((job_id, source_ids[job_id], "face", c, name, n, total / n, peak))
            async with cur.copy("COPY model_stat (job_id, source_id, model, predictions) FROM STDIN") as copy:
                for job_id, n in zip(job_ids, sizes, strict=True):
                    await copy.write_row((job_id, source_ids[job_id], "face", n))
            await cur.execute("ANALYZE prediction")
            await cur.execute("ANALYZE emotion_stat")
            await cur.execute("ANALYZE job")
    return sum(sizes)


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
                await queries.summary(session, job_id)

            joy = await queries.emotion_position(session, "face", "Joy")
            assert joy is not None
            middle = (
                await session.execute(text("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM prediction"))
            ).scalar_one()
            filt = queries.PredictionFilter(job_id=job_id)

            async def timeline() -> None:
                await queries.timeline(session, job_id, model="face", position=joy, bucket_s=1.0, by_group=True)

            async def page() -> None:
                await queries.predictions_page(session, filt, after_id=int(middle), limit=500)

            out["select_1"] = await _p50_ms(select_1, 500)
            out["summary"] = await _p50_ms(summary, 500)
            out["timeline"] = await _p50_ms(timeline, 50)
            out["page"] = await _p50_ms(page, 100)
        out["predictions"] = await _many_predictions(sessionmaker)
        async with sessionmaker() as session:

            async def count_all() -> None:
                await session.execute(text("SELECT count(*) FROM prediction"))

            async def top() -> None:
                await queries.top_emotion(session, model="face", emotion="Anger", limit=20)

            async def top_filtered() -> None:
                await queries.top_emotion(
                    session, model="face", emotion="Anger", limit=20, by="max", metadata={"team": "research"}
                )

            out["count_all"] = await _p50_ms(count_all, 15)
            out["top"] = await _p50_ms(top, 200)
            out["top_filtered"] = await _p50_ms(top_filtered, 200)
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
    ctx.report(
        f"top_emotion_{n // 1000}k_predictions_p50",
        figures["top"],
        "ms",
        baseline=figures["count_all"],
        baseline_name="select_count_all_predictions_p50",
    )
    ctx.report(
        f"top_emotion_by_max_metadata_filter_{n // 1000}k_p50",
        figures["top_filtered"],
        "ms",
        baseline=figures["count_all"],
        baseline_name="select_count_all_predictions_p50",
    )
