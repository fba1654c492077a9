"""Ingest of a generated 3-hour payload (three one-hour videos, face at 3 fps + prosody) against a floor.

The floor is the simplest way to load the same document: stdlib `json.load`, then psycopg COPY of the
same rows (scores as real[] in Hume's order) into an UNLOGGED table with no index, no constraint and
no aggregates. Our ingest does more (sources, scores placed by name, a logged table with its index and
foreign keys, per-source emotion stats, the job row) and is timed end to end from the file on disk.

Each side runs in its own subprocess so their peaks do not mix. Peak memory is the process's resident
high-water mark at the end minus the same after the imports, before the file is opened (an idle
interpreter with the same imports), so it counts what the work itself allocated, the document
included. The high-water mark is VmHWM from /proc/self/status: `ru_maxrss` would be wrong here,
because Linux carries the parent's peak into a child across fork+exec (the bench parent, having
generated the payload, is far bigger than the child's work).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import payloads
from bench.__main__ import Context

RUNS = 3
FLOOR_TABLE = """
CREATE UNLOGGED TABLE IF NOT EXISTS floor_prediction (
    job_id uuid, source_id bigint, file text, model text, group_id text, frame int4, time_begin float8,
    time_end float8, prob float8, box real[], text text, position_begin int4, position_end int4,
    confidence float8, speaker_confidence float8, scores real[], extras jsonb)
"""


def _rss_mb() -> float:
    """Peak resident set of this process so far, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    # Not Linux: ru_maxrss (KiB on Linux, bytes on macOS); fine when the parent is small.
    scale = 2**20 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _floor(path: Path, database_url: str) -> int:
    """json.load + COPY of the same rows into an unlogged table."""
    import uuid

    import psycopg

    job_id = uuid.uuid4()
    with path.open("rb") as fh:
        document = json.load(fh)
    count = 0
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(FLOOR_TABLE)
        with cur.copy(
            "COPY floor_prediction (job_id, source_id, file, model, group_id, frame, time_begin, time_end, prob,"
            " box, text, confidence, speaker_confidence, scores) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["uuid", "int8", "text", "text", "text", "int4", "float8", "float8", "float8", "float4[]",
                 "text", "float8", "float8", "float4[]"]
            )  # fmt: skip
            for index, source in enumerate(document):
                for fp in (source.get("results") or {}).get("predictions", []):
                    for model, result in fp["models"].items():
                        for group in result["grouped_predictions"]:
                            for p in group["predictions"]:
                                t = p.get("time")
                                begin, end = (t["begin"], t["end"]) if isinstance(t, dict) else (t, t)
                                b = p.get("box")
                                copy.write_row(
                                    (job_id, index, fp["file"], model, group["id"], p.get("frame"), begin, end,
                                     p.get("prob"), [b["x"], b["y"], b["w"], b["h"]] if b else None, p.get("text"),
                                     p.get("confidence"), p.get("speaker_confidence"),
                                     [e["score"] for e in p["emotions"]])
                                )  # fmt: skip
                                count += 1
        conn.commit()
    return count


def _export(job_id: str, database_url: str) -> dict[str, Any]:
    """Our CSV export of the job, written to /dev/null; returns its size and row count."""
    import uuid

    from app.analytics import csv_export as exports
    from app.store import analytics
    from app.store.db import make_engine, make_sessionmaker

    async def run() -> dict[str, Any]:
        engine = make_engine(database_url, pool_size=1)
        size = 0
        try:
            filt = analytics.PredictionFilter(job_id=uuid.UUID(job_id))
            with open(os.devnull, "wb") as sink:  # noqa: ASYNC230  # /dev/null never blocks
                async for chunk in exports.csv_chunks(make_sessionmaker(engine), filt):
                    sink.write(chunk)
                    size += len(chunk)
        finally:
            await engine.dispose()
        return {"bytes": size}

    return asyncio.run(run())


def _copy_out(job_id: str, database_url: str) -> dict[str, Any]:
    """The floor for an export: psycopg COPY ... TO STDOUT of the job's rows, discarded."""
    import psycopg

    size = 0
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY (SELECT * FROM prediction WHERE job_id = %s ORDER BY id) TO STDOUT", (job_id,)) as copy:
            for block in copy:
                size += len(block)
    return {"bytes": size}


def _ours(path: Path, database_url: str) -> int:
    from app.batch import prediction_import as importer
    from app.store.db import make_engine, make_sessionmaker

    document = path.read_bytes()

    async def run() -> int:
        engine = make_engine(database_url, pool_size=1)
        try:
            _, count = await importer.import_document(make_sessionmaker(engine), document, url=None, name=path.name)
            return count
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _callback(event_id: str, database_url: str) -> int:
    """The worker's path for a batch callback carrying the predictions: the stored event read as the worker
    reads it, its predictions decoded as the worker decodes them, and the same ingest into the job (the end
    of the job, a few small statements, is left out)."""
    import uuid

    import psycopg

    from app.batch import outcomes
    from app.batch.hume_documents import source_records
    from app.hume import callbacks, predictions
    from app.store import inbox_events, ingest, jobs
    from app.store.db import make_engine, make_sessionmaker

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            event = await inbox_events.read(conn, int(event_id))
        assert event is not None and event.job_id is not None
        sources = outcomes.callback_sources(callbacks.full(event.body), event.id)
        assert sources is not None
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                await jobs.lock(session, uuid.UUID(str(event.job_id)))
                return await ingest.ingest(session, event.job_id, source_records(sources), predictions.rows(sources))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def child(side: str, path: Path, database_url: str) -> dict[str, Any]:
    # Same imports on both sides, so the idle baseline is the same interpreter.
    import psycopg  # noqa: F401

    import app.analytics.csv_export
    import app.batch.outcomes
    import app.batch.prediction_import
    import app.store.db  # noqa: F401

    idle = _rss_mb()
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if side == "export":
        result = _export(str(path), database_url)
    elif side == "copy_out":
        result = _copy_out(str(path), database_url)
    elif side == "callback":
        result["rows"] = _callback(str(path), database_url)
    else:
        result["rows"] = (_ours if side == "ours" else _floor)(path, database_url)
    seconds = time.perf_counter() - started
    return {**result, "seconds": seconds, "peak_mb": _rss_mb() - idle}


def _spawn(side: str, path: Path | str, database_url: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "bench.bench_ingest", side, str(path), database_url],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> None:
    document = payloads.three_hours()
    size_mb = len(document) / 2**20
    with tempfile.TemporaryDirectory() as tmp, ctx.database() as url:
        path = Path(tmp) / "predictions-3h.json"
        path.write_bytes(document)
        del document
        ours: list[dict[str, Any]] = []
        floor: list[dict[str, Any]] = []
        for _ in range(RUNS):  # alternated, so drift on a noisy machine hits both sides alike
            floor.append(_spawn("floor", path, url))
            ours.append(_spawn("ours", path, url))
        callback_runs = [_spawn("callback", _stored_callback(path, url), url) for _ in range(RUNS)]
        job_id = _latest_job(url)
        export = [_spawn("export", job_id, url) for _ in range(RUNS)]
        copy_out = [_spawn("copy_out", job_id, url) for _ in range(RUNS)]
    rows = ours[0]["rows"]
    assert rows == floor[0]["rows"], (rows, floor[0]["rows"])
    ours_s = statistics.median(r["seconds"] for r in ours)
    floor_s = statistics.median(r["seconds"] for r in floor)
    ctx.report("ingest_3h_seconds", ours_s, "s", baseline=floor_s, baseline_name="floor_jsonload_copy_unlogged_s")
    ctx.report(
        "ingest_3h_throughput",
        size_mb / ours_s,
        "MB/s",
        baseline=size_mb / floor_s,
        baseline_name="floor_jsonload_copy_unlogged_MB/s",
    )
    ctx.report("ingest_3h_rows_per_s", rows / ours_s, "rows/s", baseline=rows / floor_s, baseline_name="floor_rows/s")
    ctx.report(
        "ingest_3h_peak_memory",
        max(r["peak_mb"] for r in ours),
        "MB",
        baseline=size_mb,
        baseline_name="payload_MB(VmHWM-idle)",
    )
    ctx.report(
        "ingest_floor_peak_memory",
        max(r["peak_mb"] for r in floor),
        "MB",
        baseline=size_mb,
        baseline_name="payload_MB(VmHWM-idle)",
    )
    assert callback_runs[0]["rows"] == rows, (callback_runs[0]["rows"], rows)
    callback_s = statistics.median(r["seconds"] for r in callback_runs)
    ctx.report(
        "ingest_3h_callback_throughput",
        size_mb / callback_s,
        "MB/s",
        baseline=size_mb / floor_s,
        baseline_name="floor_jsonload_copy_unlogged_MB/s",
    )
    ctx.report(
        "ingest_3h_callback_peak_memory",
        max(r["peak_mb"] for r in callback_runs),
        "MB",
        baseline=size_mb,
        baseline_name="payload_MB(VmHWM-idle)",
    )
    export_s = statistics.median(r["seconds"] for r in export)
    copy_s = statistics.median(r["seconds"] for r in copy_out)
    ctx.report(
        "export_csv_3h_rows_per_s",
        rows / export_s,
        "rows/s",
        baseline=rows / copy_s,
        baseline_name="copy_to_stdout_rows/s",
    )
    csv_mb = export[0]["bytes"] / 2**20
    ctx.report(
        "export_csv_3h_peak_memory",
        max(r["peak_mb"] for r in export),
        "MB",
        baseline=csv_mb,
        baseline_name="csv_MB(VmHWM-idle)",
    )


def _stored_callback(path: Path, database_url: str) -> str:
    """A job waiting for its callback, and the callback as the intake stores it (body verbatim); the event's id."""
    import uuid

    import psycopg

    body = b'{"job_id":"bench-3h","status":"COMPLETED","predictions":' + path.read_bytes() + b"}"
    job_id = uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO job (id, kind, status, hume_job_id, request) VALUES (%s, 'batch', 'in_progress', %s, '{}')",
            (job_id, f"bench-3h-{job_id}"),
        )
        row = conn.execute(
            "INSERT INTO inbox_event (provider, dedup_key, event_type, job_id, body) VALUES"
            " ('hume', %s, 'batch.callback', %s, %s) RETURNING id",
            (str(job_id), job_id, body),
        ).fetchone()
    assert row is not None
    return str(row[0])


def _latest_job(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM job ORDER BY created_at DESC LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    print(json.dumps(child(sys.argv[1], Path(sys.argv[2]), sys.argv[3])))
