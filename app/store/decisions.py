"""Audio Decisions answers: one row per (job, source, window, question), a window's answers stored once.

`store_answers` is the one way rows get in. A retried window (a worker that died after Hume answered, a task
run twice) stores nothing the second time: the window is claimed in `decision_window` (INSERT ... ON CONFLICT
DO NOTHING) in the transaction that stores its answers, and only the rows of windows claimed now are written,
so the first answers stored stay the answers. With the rows it writes each (job, question set) to
`decision_job`, whose foreign keys check the job and the set once a batch rather than once a row. Rows arrive
already neutral (`AnswerRow`: numbers, text and JSON bytes); reading Hume's answers into them is the
decisions feature's business.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import pgbinary as pg
from app.store.db import driver_connection

_JOBS = (
    "INSERT INTO decision_job (job_id, question_set_id, family_id, tenant)"
    " SELECT * FROM unnest(%(j_job)s::uuid[], %(j_set)s::uuid[], %(j_family)s::uuid[], %(j_tenant)s::text[])"
    " ON CONFLICT ON CONSTRAINT pk_decision_job DO NOTHING"
)
_CLAIM = (
    "INSERT INTO decision_window (job_id, source_index, window_index)"
    " SELECT * FROM unnest(%(w_job)s::uuid[], %(w_source)s::int4[], %(w_window)s::int4[])"
    " ON CONFLICT ON CONSTRAINT pk_decision_window DO NOTHING RETURNING job_id, source_index, window_index"
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
    probabilities: Sequence[float | None] | None = None
    """option_probabilities in the order of the question set version's options (None: an option not answered)."""
    score: float | None = None
    level_probabilities: bytes | None = None
    spans: bytes | None = None
    span_count: int | None = None
    span_ms: int | None = None
    """The spans' total duration, of those with both ends (None when none has)."""
    run_id: uuid.UUID | None = None


COLUMNS = (
    "job_id", "source_index", "source_url", "window_index", "window_start_ms", "window_end_ms", "question_id",
    "primitive", "share", "choice", "confidence", "option_probabilities", "probabilities", "score",
    "level_probabilities", "spans", "span_count", "span_ms", "raw", "run_id", "question_set_id", "family_id", "tenant",
)  # fmt: skip
_ROW_START = pg.row_start(len(COLUMNS))
# Bytes handed to COPY at a time, as ingest does: per-call overhead vanishes, memory stays flat.
_CHUNK = 1 << 20


def copy_statement(table: str) -> str:
    return f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"


_REALS: dict[int, tuple[Callable[..., bytes], tuple[int, ...]]] = {}


def _reals(values: Sequence[float | None] | None) -> bytes:
    """A real[] field (array_send's layout: header, then each element's length and value), one pack a width."""
    if values is None:
        return pg.NULL
    if None in values:
        return pg.float4_array_nullable(values)
    n = len(values)
    found = _REALS.get(n)
    if found is None:
        found = _REALS[n] = (struct.Struct(">6i" + "if" * n).pack, (20 + 8 * n, 1, 0, pg.FLOAT4_OID, n, 1))
    pack, head = found
    return pack(*head, *[part for value in values for part in (4, value)])


def encoded(rows: Iterable[AnswerRow]) -> Iterator[bytes]:
    """Each row in Postgres' binary COPY format, fields in COLUMNS order. A job's id, its set's and family's,
    the tenant, the recording's URL and run id repeat row after row (the same objects): each is encoded once a
    run of them (0.38 s for 100,000 rows instead of 0.56)."""
    unset: Any = object()  # not None: a URL or run id may be None
    job = question_set = family = tenant = url = run = unset
    job_b = set_b = family_b = tenant_b = url_b = run_b = b""
    uuid_, int4, text, float4, jsonb = pg.uuid_, pg.int4, pg.text, pg.float4, pg.jsonb
    for r in rows:
        if r.job_id is not job:
            job, job_b = r.job_id, uuid_(r.job_id)
        if r.question_set_id is not question_set:
            question_set, set_b = r.question_set_id, uuid_(r.question_set_id)
        if r.family_id is not family:
            family, family_b = r.family_id, uuid_(r.family_id)
        if r.tenant is not tenant:
            tenant, tenant_b = r.tenant, text(r.tenant)
        if r.source_url is not url:
            url, url_b = r.source_url, text(r.source_url)
        if r.run_id is not run:
            run, run_b = r.run_id, pg.NULL if r.run_id is None else uuid_(r.run_id)
        yield b"".join((
            _ROW_START, job_b, int4(r.source_index), url_b, int4(r.window_index), int4(r.window_start_ms),
            int4(r.window_end_ms), text(r.question_id), text(r.primitive), float4(r.share), text(r.choice),
            float4(r.confidence), jsonb(r.option_probabilities), _reals(r.probabilities), float4(r.score),
            jsonb(r.level_probabilities), jsonb(r.spans), int4(r.span_count), pg.int8(r.span_ms), jsonb(r.raw),
            run_b, set_b, family_b, tenant_b,
        ))  # fmt: skip


async def copy_into(conn: psycopg.AsyncConnection[object], table: str, rows: Sequence[AnswerRow]) -> None:
    """COPY `rows` into `table` (decision_answer, or a table of the same columns) in 1 MiB writes."""
    try:
        async with conn.cursor() as cursor, cursor.copy(copy_statement(table)) as copy:
            parts = [pg.SIGNATURE]
            size = 0
            for data in encoded(rows):
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


Window = tuple[uuid.UUID, int, int]
"""(job_id, source_index, window_index)"""


def by_window(rows: Sequence[AnswerRow]) -> dict[Window, list[AnswerRow]]:
    """The rows' windows in first-seen order, each with its rows, a question's second row in a window left out."""
    windows: dict[Window, list[AnswerRow]] = {}
    for r in rows:
        found = windows.setdefault((r.job_id, r.source_index, r.window_index), [])
        if all(f.question_id != r.question_id for f in found):
            found.append(r)
    return windows


def _windows(rows: Sequence[AnswerRow]) -> list[Window] | None:
    """The rows' windows in order when each window's rows are one run with each question once, as a job's
    batches come; None otherwise (then `by_window` sorts them out). 21 ms of CPU for 100,000 rows, where
    grouping them into a list a window (`by_window`) takes 90."""
    windows: dict[Window, None] = {}
    job: uuid.UUID | None = None
    source = window = -1
    seen: set[str] = set()
    for r in rows:
        if r.job_id is not job or r.source_index != source or r.window_index != window:
            job, source, window = r.job_id, r.source_index, r.window_index
            if (job, source, window) in windows:
                return None
            windows[job, source, window] = None
            seen.clear()
        if r.question_id in seen:
            return None
        seen.add(r.question_id)
    return list(windows)


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


def _claims(windows: Sequence[Window]) -> dict[str, list[Any]]:
    return {
        "w_job": [w[0] for w in windows], "w_source": [w[1] for w in windows], "w_window": [w[2] for w in windows],
    }  # fmt: skip


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _real_array(values: Sequence[float | None] | None) -> str | None:
    """An array literal of float8 text (repr round-trips), made real by the server as COPY's float4 is."""
    if values is None:
        return None
    return "{" + ",".join("NULL" if v is None else repr(float(v)) for v in values) + "}"


_ARRAY_TYPES = {
    "job_id": "uuid", "source_index": "int4", "source_url": "text", "window_index": "int4",
    "window_start_ms": "int4", "window_end_ms": "int4", "question_id": "text", "primitive": "text",
    "share": "float4", "choice": "text", "confidence": "float4", "option_probabilities": "jsonb",
    "probabilities": "text", "score": "float4", "level_probabilities": "jsonb", "spans": "jsonb",
    "span_count": "int4", "span_ms": "int8", "raw": "jsonb", "run_id": "uuid", "question_set_id": "uuid",
    "family_id": "uuid", "tenant": "text",
}  # fmt: skip
UNNEST = (
    "SELECT "
    + ", ".join("u.probabilities::float8[]::real[]" if c == "probabilities" else f"u.{c}" for c in COLUMNS)
    + " FROM unnest("
    + ", ".join(f"%({c})s::{_ARRAY_TYPES[c]}[]" for c in COLUMNS)
    + f") AS u({', '.join(COLUMNS)})"
)
"""The rows `array_params` gives, in COLUMNS order, as a query (`u` the rows)."""


def array_params(rows: Sequence[AnswerRow]) -> dict[str, list[Any]]:
    """`UNNEST`'s parameters: each column's values as an array (probabilities as float8 array text)."""
    params: dict[str, list[Any]] = {name: [getattr(r, name) for r in rows] for name in COLUMNS}
    for name in ("option_probabilities", "level_probabilities", "spans", "raw"):
        params[name] = [_text(v) for v in params[name]]
    params["probabilities"] = [_real_array(v) for v in params["probabilities"]]
    return params


# One statement, one round trip: the window claimed (its decision_job row checking the job and set), and its
# answers inserted only if the claim is new. A racing writer's claim waits for this transaction, then skips.
_INSERT_NEW = (
    f"WITH jobs AS ({_JOBS}), claimed AS ({_CLAIM}) INSERT INTO decision_answer ({', '.join(COLUMNS)}) {UNNEST}"
    " WHERE (u.job_id, u.source_index, u.window_index) IN (SELECT job_id, source_index, window_index FROM claimed)"
)


async def _insert_new(conn: psycopg.AsyncConnection[object], windows: dict[Window, list[AnswerRow]]) -> int:
    """Claim the windows and INSERT the answers of those claimed now (and their decision_job rows), one
    statement over arrays; returns how many answers were new."""
    rows = [r for found in windows.values() for r in found]
    cursor = await conn.execute(_INSERT_NEW, {**array_params(rows), **_jobs(rows), **_claims(list(windows))})
    return cursor.rowcount


# Up to this many rows (a window's answers: at most 25 questions, or a few windows), one INSERT over arrays
# is one round trip; above it COPY wins. See bench/bench_decisions.py for the figures that set it.
COPY_FROM_ROWS = 200


_WINDOW_ROW = struct.Struct(">hi16siiii").pack


def _window_copy(windows: Sequence[Window]) -> bytes:
    """The windows as decision_window's COPY (job_id, source_index, window_index), in binary."""
    rows = b"".join(_WINDOW_ROW(3, 16, job.bytes, 4, source, 4, window) for job, source, window in windows)
    return pg.SIGNATURE + rows + pg.TRAILER


async def _claim(conn: psycopg.AsyncConnection[object], windows: Sequence[Window]) -> set[Window] | None:
    """Claim the windows: None when every one was new, else those claimed now. COPY under a savepoint first
    (24-41 ms for 10,000 windows, INSERT ... ON CONFLICT 80-111 ms); when any was claimed before, COPY stops at
    the primary key (after waiting for a racing writer's transaction), and the INSERT claims the rest."""
    try:
        async with conn.transaction(), conn.cursor() as cursor:
            async with cursor.copy(
                "COPY decision_window (job_id, source_index, window_index) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                await copy.write(_window_copy(windows))
        return None
    except pg_errors.UniqueViolation:
        cursor = await conn.execute(_CLAIM, _claims(windows))
        return {cast(Window, row) for row in await cursor.fetchall()}


async def store_answers(session: AsyncSession, rows: Sequence[AnswerRow]) -> int:
    """Store answers inside the caller's transaction, a window's answers once: the rows of a window stored
    before (by this call's or another transaction, committed or racing) are skipped, the first answers stay,
    and a question twice in one window is stored once. Returns how many rows were new.

    Few rows (a window's) go by one statement that claims their windows and inserts the answers of those it
    claimed. Many go by claiming the windows (`_claim`) and then one COPY of the rows of the windows claimed
    now: when every window is new, as in the common case, that is the whole batch as it came."""
    if not rows:
        return 0
    conn = await driver_connection(session)
    if len(rows) < COPY_FROM_ROWS:
        return await _insert_new(conn, by_window(rows))
    await conn.execute(_JOBS, _jobs(rows))
    windows = _windows(rows)
    grouped: dict[Window, list[AnswerRow]] | None = None
    if windows is None:
        grouped = by_window(rows)
        windows = list(grouped)
    claimed = await _claim(conn, windows)
    new: Sequence[AnswerRow] = rows
    if claimed is not None or grouped is not None:
        grouped = grouped or by_window(rows)
        new = [r for key, found in grouped.items() if claimed is None or key in claimed for r in found]
    if new:
        await copy_into(conn, "decision_answer", new)
    return len(new)
