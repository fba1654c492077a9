"""Ingest of the v1 results of a one-hour job (voice measurements + faces at 3 fps) against a bare COPY.

Both sides start from the same stored Hume v1 responses in `v1_chunk` and write the same rows into the same
storage: the real `prediction` table (logged, partitioned, its primary key), each for its own job of the same
database, into the tenant's month made beforehand. The floor reads the results and COPYs one row per
measurement/face with all 18 columns,
scores as Hume listed them (no placement by name), through psycopg's own row writer: no emotion order,
no stats, no job update. Ours (`v1_completion.complete`) reads them, places the sparse scores by name,
writes the per-source stats and completes the job, in one transaction. The two alternate which goes
first, and the generated responses are frozen out of the garbage collector's walks for both.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import text

from app.config import Settings
from app.config.sources import libpq_url
from app.emulator.expression_labels import AUDIO_EXPRESSIONS, VIDEO_DESCRIPTIONS, VIDEO_EXPRESSIONS, VOICE_ATTRIBUTES
from app.store import jobs, v1_chunks
from app.store import prediction_partitions as partitions
from app.store.db import make_engine, make_sessionmaker
from app.v1.completion import complete
from app.wiring import build_deps
from bench.__main__ import Context

RUNS = 5
TENANT = "default"  # both jobs' (jobs.create's default)
FLOOR_COPY = (
    "COPY prediction (job_id, tenant, source_id, file, model, group_id, frame, time_begin, time_end, prob, box, text,"
    " position_begin, position_end, confidence, speaker_confidence, scores, extras) FROM STDIN (FORMAT BINARY)"
)
FLOOR_TYPES = ["uuid", "text", "int8", "text", "text", "text", "int4", "float8", "float8", "float8", "float4[]", "text",
               "int4", "int4", "float8", "float8", "float4[]", "jsonb"]  # fmt: skip


def _scores(rng: random.Random, names: tuple[str, ...], low: int, high: int) -> list[dict[str, object]]:
    picked = sorted(((round(rng.uniform(0.1, 0.95), 4), n) for n in rng.sample(names, rng.randint(low, high))),
                    reverse=True)  # fmt: skip
    return [{"name": n, "probability": p} for p, n in picked]


Chunks = list[tuple[int, dict[str, Any]]]


def one_hour(rng: random.Random) -> tuple[Chunks, Chunks]:
    """(audio chunks, video chunks) as (start_ms, response): 5 x 12 min of speech measured every ~3 s,
    10 800 frames in 108 requests with one or two faces each."""
    audio: Chunks = []
    for chunk in range(5):
        measurements = [
            {"measurement_id": i, "utterance_id": i // 4, "audio_start_ms": i * 3000, "audio_end_ms": i * 3000 + 3000,
             "trigger": "interval", "expressions": _scores(rng, AUDIO_EXPRESSIONS, 5, 30),
             "voice_attributes": _scores(rng, VOICE_ATTRIBUTES, 0, 3)}
            for i in range(240)
        ]  # fmt: skip
        audio.append((chunk * 720_000, {"request_id": "r", "run_id": "u", "measurements": measurements}))
    video: Chunks = []
    for chunk in range(108):
        images = [
            {"frame_id": i, "faces": [
                {"face_id": f, "bbox": [10.0, 20.0, 110.0, 140.0], "confidence": 0.97,
                 "expressions": _scores(rng, VIDEO_EXPRESSIONS, 2, 8),
                 "descriptions": _scores(rng, VIDEO_DESCRIPTIONS, 1, 4)}
                for f in range(rng.randint(1, 2))]}
            for i in range(100)
        ]  # fmt: skip
        video.append((chunk * 33_333, {"request_id": "r", "run_id": "u", "measurements": images}))
    return audio, video


async def _prepare(url: str, audio: Chunks, video: Chunks) -> tuple[uuid.UUID, uuid.UUID, int]:
    """The v1 job with its stored chunks, and the floor's own job and source: (job, floor job, floor source)."""
    engine = make_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            job = await jobs.create(session, kind="batch", backend="v1", status="in_progress", request={"urls": ["u"]})
            for i, (start, result) in enumerate(audio):
                await v1_chunks.put(session, job.id, 0, "audio", i, start_ms=start, result=orjson.dumps(result))
            for i, (start, result) in enumerate(video):
                frames = [(start // 333 + k * 10, start + k * 333) for k in range(100)]
                await v1_chunks.put(
                    session, job.id, 0, "video", i, start_ms=start, result=orjson.dumps(result), frames=frames
                )
            for medium, n in (("audio", len(audio)), ("video", len(video))):
                await v1_chunks.put(session, job.id, 0, medium, v1_chunks.OUTCOME, start_ms=n)
            floor_job = await jobs.create(
                session, kind="batch", backend="v1", status="in_progress", request={"urls": ["u"]}
            )
            floor_source = await session.execute(
                text("INSERT INTO source (job_id, position, kind, url) VALUES (:j, 0, 'url', 'u') RETURNING id"),
                {"j": floor_job.id},
            )
            ids = job.id, floor_job.id, int(floor_source.scalar_one())
    finally:
        await engine.dispose()
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await partitions.ensure(conn, TENANT, partitions.months_around(datetime.now(UTC)))
    return ids


async def _ours(url: str, job_id: uuid.UUID) -> tuple[float, int]:
    settings = Settings(database_url=url, hume_api_key="unused", hume_base_url="http://127.0.0.1:9")
    async with build_deps(settings, pool_size=1) as deps:
        started = time.perf_counter()
        await complete(deps, job_id, ["u"])
        elapsed = time.perf_counter() - started
        async with deps.sessionmaker() as session:
            count = (
                await session.execute(text("SELECT num_predictions FROM job WHERE id = :j"), {"j": job_id})
            ).scalar()
        return elapsed, int(count or 0)


def _floor(url: str, job_id: uuid.UUID, floor_job: uuid.UUID, floor_source: int) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT medium, start_ms, result::text, frames::text FROM v1_chunk WHERE job_id = %s AND chunk >= 0"
                    " ORDER BY source_index, medium, chunk", (job_id,))  # fmt: skip
        chunks = cur.fetchall()
        with cur.copy(FLOOR_COPY) as copy:
            copy.set_types(FLOOR_TYPES)
            for medium, start, raw, raw_frames in chunks:
                result = orjson.loads(raw)
                if medium == "audio":
                    for m in result["measurements"]:
                        copy.write_row((floor_job, TENANT, floor_source, None, "prosody",
                                        f"{start}:{m['utterance_id']}", None, (start + m["audio_start_ms"]) / 1000,
                                        (start + m["audio_end_ms"]) / 1000,
                                        None, None, None, None, None, None, None,
                                        [e["probability"] for e in m["expressions"]],
                                        orjson.dumps({"trigger": m["trigger"],
                                                      "voice_attributes": m["voice_attributes"]}).decode()),
                                       )  # fmt: skip
                        count += 1
                    continue
                frames = orjson.loads(raw_frames)
                for i, image in enumerate(result["measurements"]):
                    for face in image["faces"]:
                        x0, y0, x1, y1 = face["bbox"]
                        copy.write_row((floor_job, TENANT, floor_source, None, "face", f"face_{face['face_id']}",
                                        frames[i][0], frames[i][1] / 1000, frames[i][1] / 1000, face["confidence"],
                                        [x0, y0, x1 - x0, y1 - y0], None, None, None, None, None,
                                        [e["probability"] for e in face["expressions"]],
                                        orjson.dumps({"descriptions": face["descriptions"]}).decode()))  # fmt: skip
                        count += 1
        conn.commit()
    return time.perf_counter() - started, count


def run(ctx: Context) -> None:
    audio, video = one_hour(random.Random(7))
    # The generated responses stay alive all run; frozen, the collector's full passes skip them on both sides.
    gc.collect()
    gc.freeze()
    ours: list[float] = []
    floor: list[float] = []
    rows = 0
    try:
        for run_index in range(RUNS):
            with ctx.database() as url:
                job_id, floor_job, floor_source = asyncio.run(_prepare(url, audio, video))
                for side in ("floor", "ours") if run_index % 2 == 0 else ("ours", "floor"):
                    if side == "floor":
                        seconds, rows = _floor(url, job_id, floor_job, floor_source)
                        floor.append(seconds)
                    else:
                        seconds, ours_rows = asyncio.run(_ours(url, job_id))
                        ours.append(seconds)
            assert ours_rows == rows, (ours_rows, rows)
    finally:
        gc.unfreeze()
    print(f"v1 ingest of {rows} rows: ours {[round(s, 3) for s in ours]} s, floor {[round(s, 3) for s in floor]} s")
    ours_rate = rows / statistics.median(ours)
    floor_rate = rows / statistics.median(floor)
    ctx.report("v1_ingest_one_hour", ours_rate, "rows/s", baseline=floor_rate, baseline_name="bare_copy_same_rows")
