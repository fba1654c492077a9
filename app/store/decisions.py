"""Audio Decisions answers: one row per (job, source, window, question), stored exactly once.

`store_answers` is the one way rows get in. A retried window (a worker that died after Hume answered, a task
run twice) stores nothing the second time: the primary key (job_id, question_id, source_index, window_index)
decides, and the first answer stored stays the answer. With the rows it writes each (job, question set) to
`decision_job`, whose foreign keys check the job and the set once a batch rather than once a row. Rows arrive
already neutral (`AnswerRow`: numbers, text and JSON bytes); reading Hume's answers into them is the
decisions feature's business.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import pgbinary as pg
from app.store.db import driver_connection

PRIMARY_KEY = "pk_decision_answer"
_JOBS = (
    "INSERT INTO decision_job (job_id, question_set_id, family_id, tenant)"
    " SELECT * FROM unnest(%(j_job)s::uuid[], %(j_set)s::uuid[], %(j_family)s::uuid[], %(j_tenant)s::text[])"
    " ON CONFLICT ON CONSTRAINT pk_decision_job DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """One answer as stored. JSON columns come serialized (UTF-8 JSON bytes), so COPY writes them as they are."""

    job_id: uuid.UUID
    source_index: int
    source_url: str | None
    window_index: int
    window_start_ms: int
    window_end_ms: int
    question_id: str
    primitive: str
    raw: bytes
    """Hume's answer as it came (JSON; `null` when Hume sent nothing for the question)."""
    question_set_id: uuid.UUID
    family_id: uuid.UUID
    tenant: str
    share: float | None = None
    choice: str | None = None
    confidence: float | None = None
    option_probabilities: bytes | None = None
    score: float | None = None
    level_probabilities: bytes | None = None
    spans: bytes | None = None
    run_id: uuid.UUID | None = None


COLUMNS = (
    "job_id", "source_index", "source_url", "window_index", "window_start_ms", "window_end_ms", "question_id",
    "primitive", "share", "choice", "confidence", "option_probabilities", "score", "level_probabilities", "spans",
    "raw", "run_id", "question_set_id", "family_id", "tenant",
)  # fmt: skip
_ROW_START = pg.row_start(len(COLUMNS))
# Bytes handed to COPY at a time, as ingest does: per-call overhead vanishes, memory stays flat.
_CHUNK = 1 << 20


def copy_statement(table: str) -> str:
    return f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def encode(r: AnswerRow) -> bytes:
    """One row in Postgres' binary COPY format, fields in COLUMNS order."""
    return b"".join((
        _ROW_START, pg.uuid_(r.job_id), pg.int4(r.source_index), pg.text(r.source_url), pg.int4(r.window_index),
        pg.int4(r.window_start_ms), pg.int4(r.window_end_ms), pg.text(r.question_id), pg.text(r.primitive),
        pg.float4(r.share), pg.text(r.choice), pg.float4(r.confidence), pg.jsonb(r.option_probabilities),
        pg.float4(r.score), pg.jsonb(r.level_probabilities), pg.jsonb(r.spans), pg.jsonb(r.raw),
        pg.NULL if r.run_id is None else pg.uuid_(r.run_id), pg.uuid_(r.question_set_id), pg.uuid_(r.family_id),
        pg.text(r.tenant),
    ))  # fmt: skip


async def copy_into(conn: psycopg.AsyncConnection[object], table: str, rows: Sequence[AnswerRow]) -> None:
    """COPY `rows` into `table` (decision_answer, or a table of the same columns) in 1 MiB writes."""
    try:
        async with conn.cursor() as cursor, cursor.copy(copy_statement(table)) as copy:
            parts = [pg.SIGNATURE]
            size = 0
            for r in rows:
                data = encode(r)
                parts.append(data)
                size += len(data)
                if size >= _CHUNK:
                    await copy.write(b"".join(parts))
                    parts.clear()
                    size = 0
            parts.append(pg.TRAILER)
            await copy.write(b"".join(parts))
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"an answer holds a number out of range: {exc}") from None


_INSERT_NEW = (
    f"WITH jobs AS ({_JOBS}) INSERT INTO decision_answer ({', '.join(COLUMNS)})"
    " SELECT * FROM unnest(%(job_id)s::uuid[], %(source_index)s::int4[], %(source_url)s::text[],"
    " %(window_index)s::int4[], %(window_start_ms)s::int4[], %(window_end_ms)s::int4[], %(question_id)s::text[],"
    " %(primitive)s::text[], %(share)s::float4[], %(choice)s::text[], %(confidence)s::float4[],"
    " %(option_probabilities)s::jsonb[], %(score)s::float4[], %(level_probabilities)s::jsonb[], %(spans)s::jsonb[],"
    " %(raw)s::jsonb[], %(run_id)s::uuid[], %(question_set_id)s::uuid[], %(family_id)s::uuid[], %(tenant)s::text[])"
    f" ON CONFLICT ON CONSTRAINT {PRIMARY_KEY} DO NOTHING"
)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _jobs(rows: Sequence[AnswerRow]) -> dict[str, list[Any]]:
    """The rows' distinct (job, question set) as `_JOBS` takes them. Rows come in runs of one job and set (the
    same objects), so a row is looked at only where the run changes: hashing every row's UUIDs cost 60 ms of
    the 0.7 s 100,000 rows take to COPY."""
    seen: dict[tuple[Any, ...], None] = {}
    job: uuid.UUID | None = None
    question_set: uuid.UUID | None = None
    for r in rows:
        if r.job_id is not job or r.question_set_id is not question_set:
            job, question_set = r.job_id, r.question_set_id
            seen[(job, question_set, r.family_id, r.tenant)] = None
    pairs = sorted(seen)
    return {
        "j_job": [p[0] for p in pairs], "j_set": [p[1] for p in pairs], "j_family": [p[2] for p in pairs],
        "j_tenant": [p[3] for p in pairs],
    }  # fmt: skip


# Rows an INSERT over arrays carries at once: psycopg builds each array in Python, so a few thousand at a time.
_INSERT_BATCH = 5000


async def insert_new(conn: psycopg.AsyncConnection[object], rows: Sequence[AnswerRow]) -> int:
    """INSERT the rows not stored yet (and their decision_job rows), one statement over arrays a batch;
    returns how many were new."""
    stored = 0
    for at in range(0, len(rows), _INSERT_BATCH):
        batch = rows[at : at + _INSERT_BATCH]
        params: dict[str, Any] = {name: [getattr(r, name) for r in batch] for name in COLUMNS}
        for name in ("option_probabilities", "level_probabilities", "spans", "raw"):
            params[name] = [_text(v) for v in params[name]]
        cursor = await conn.execute(_INSERT_NEW, {**params, **_jobs(batch)})
        stored += cursor.rowcount
    return stored


# Up to this many rows (a window's answers: at most 25 questions, or a few windows), one INSERT over arrays
# is one round trip; above it COPY wins. See bench/bench_decisions.py for the figures that set it.
COPY_FROM_ROWS = 200


async def _stored_keys(conn: psycopg.AsyncConnection[object], rows: Sequence[AnswerRow]) -> set[tuple[Any, ...]]:
    """The primary keys already stored among the rows' jobs."""
    cursor = await conn.execute(
        "SELECT job_id, question_id, source_index, window_index FROM decision_answer WHERE job_id = ANY(%(jobs)s)",
        {"jobs": sorted({r.job_id for r in rows})},
    )
    return {cast(tuple[Any, ...], row) for row in await cursor.fetchall()}


async def _copy_new(conn: psycopg.AsyncConnection[object], rows: Sequence[AnswerRow]) -> bool:
    """COPY under a savepoint; False (nothing stored) if any row's key is stored already."""
    try:
        async with conn.transaction():
            await copy_into(conn, "decision_answer", rows)
        return True
    except pg_errors.UniqueViolation:
        # The primary key is decision_answer's only unique constraint (reported under its partition's index).
        return False


async def store_answers(session: AsyncSession, rows: Sequence[AnswerRow]) -> int:
    """Store answers inside the caller's transaction, each (job, source, window, question) once; rows already
    stored are skipped (the first answer stays). Returns how many rows were new.

    Few rows (a window's) go by one INSERT ... ON CONFLICT DO NOTHING over arrays. Many go by COPY under a
    savepoint: the common case (nothing stored yet) costs what a COPY costs. If any was stored before, COPY
    stops at the primary key, the savepoint is rolled back, the keys stored for these jobs are read and the
    rest is COPYed; a writer racing this one (its rows appear between that read and the COPY) leaves the
    rest to the INSERT, which skips whatever is there."""
    if not rows:
        return 0
    conn = await driver_connection(session)
    if len(rows) < COPY_FROM_ROWS:
        return await insert_new(conn, rows)
    await conn.execute(_JOBS, _jobs(rows))
    if await _copy_new(conn, rows):
        return len(rows)
    stored = await _stored_keys(conn, rows)
    rest = [r for r in rows if (r.job_id, r.question_id, r.source_index, r.window_index) not in stored]
    if not rest or await _copy_new(conn, rest):
        return len(rest)
    return await insert_new(conn, rest)
