"""Storing a live session's measurements as they arrive against storing the same measurements at once, as a
file upload's are: one hour of speech measured every 3 s (1,200 audio measurements, 5-30 expressions each).

The upload side is `ingest.ingest` in one transaction (sources, rows, stats). The live side is the relay's
`live_sessions.append`, one transaction per flush: with one measurement a flush (one audio session, a
measurement every 3 s, SESSION_FLUSH_MS 250) and with 8 (a flush that found several waiting). Both make rows
with the relay's own `measurement_rows` from the messages' JSON, into their own job of one database."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.prediction_rows import PredictionRow
from app.emulator.expression_labels import AUDIO_EXPRESSIONS
from app.sessions.flusher import measurement_rows
from app.store import api_keys, ingest, jobs, live_sessions
from app.store.db import make_engine, make_sessionmaker
from bench.__main__ import Context

MEASUREMENTS = 1200


def messages(rng: random.Random) -> list[bytes]:
    out = []
    for i in range(MEASUREMENTS):
        names = rng.sample(AUDIO_EXPRESSIONS, rng.randint(5, 30))
        scored = sorted(((round(rng.uniform(0.1, 0.95), 4), n) for n in names), reverse=True)
        expressions = [{"name": n, "probability": p} for p, n in scored]
        out.append(json.dumps({
            "type": "measurement.result", "measurement_id": i, "utterance_id": i // 4, "audio_start_ms": i * 3000,
            "audio_end_ms": i * 3000 + 3000, "trigger": "interval", "expressions": expressions,
            "voice_attributes": [],
        }).encode())  # fmt: skip
    return out


async def upload(sessionmaker: async_sessionmaker[AsyncSession], bodies: list[bytes]) -> float:
    started = time.perf_counter()
    async with sessionmaker.begin() as session:
        job = await jobs.create(session, kind="batch", backend="v1", status="in_progress", request={})
        rows = measurement_rows("audio", [(i, body, 0) for i, body in enumerate(bodies)])
        await ingest.ingest(session, job.id, [ingest.SourceRecord(kind="url", url="https://example.com/a.wav")], rows)
    return time.perf_counter() - started


async def live(sessionmaker: async_sessionmaker[AsyncSession], bodies: list[bytes], per_flush: int) -> float:
    async with sessionmaker.begin() as session:
        key = await api_keys.create(session, name=f"bench-{uuid.uuid4()}", scopes=["session"])
        principal = await api_keys.find(session, key)
        assert principal is not None
        redeemed = live_sessions.Redeemed(api_key_id=principal.key_id, tenant="default", job_id=uuid.uuid4(),
                                          metadata={})  # fmt: skip
        job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium="audio", request={})

    def rows(ids: Sequence[int]) -> Iterable[PredictionRow]:
        return measurement_rows("audio", [(i, bodies[i], 0) for i in ids])

    started = time.perf_counter()
    for first in range(0, len(bodies), per_flush):
        async with sessionmaker.begin() as session:
            await live_sessions.append(session, job_id, list(range(first, min(first + per_flush, len(bodies)))), rows)
    return time.perf_counter() - started


async def measure(url: str) -> tuple[float, float, float]:
    engine = make_engine(url, pool_size=2)
    try:
        sessionmaker = make_sessionmaker(engine)
        bodies = messages(random.Random(24))
        await upload(sessionmaker, bodies)  # the emotion order learns the names once, outside the timings
        uploads, singles, eights = [], [], []
        for _ in range(3):
            uploads.append(await upload(sessionmaker, bodies))
            singles.append(await live(sessionmaker, bodies, 1))
            eights.append(await live(sessionmaker, bodies, 8))
        return min(uploads), min(singles), min(eights)
    finally:
        await engine.dispose()


def run(ctx: Context) -> None:
    with ctx.database() as url:
        file_s, one_s, eight_s = asyncio.run(measure(url))
    ctx.report("live_ingest_1_per_flush", one_s, "s", baseline=file_s, baseline_name="file_upload_ingest")
    ctx.report("live_ingest_8_per_flush", eight_s, "s", baseline=file_s, baseline_name="file_upload_ingest")
