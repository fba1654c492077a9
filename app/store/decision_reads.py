"""Audio Decisions answers as analysts read them: one question's answers across jobs (its distribution and the
recordings that answer it most strongly), and one job's answers as pages or as CSV made by Postgres.

Across jobs a question is one (question set family, question id, primitive): versions of a set share their
questions' answers by id, and an id whose primitive changed between versions is a different question. The
family's jobs come from decision_job (filtered by tenant, job metadata and job creation time there), and each
job's answers to the question are one range of decision_answer's (job, question) index. Distributions are one
grouped pass over typed columns (a choice's probabilities as a real[], a span list's number and duration), no
JSON read.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import question_sets
from app.store.analytics import csv_cell
from app.store.db import driver_connection
from app.store.filters import Where

SHARE_BINS = 10
# Answers are float4 (about 7 significant digits); reads carry 4 decimals, as prediction scores do.
DECIMALS = 4


def _float4_from(boundary: Decimal) -> float:
    """The least float4 whose value as numeric (Postgres' float4_numeric: printf's %.6g, float4's 6 digits) is
    at least `boundary`: below it a stored value reads as less than the boundary, from it on as at least."""
    bits = _FLOAT4.unpack(_FLOAT4_VALUE.pack(float(boundary)))[0]

    def value(b: int) -> float:
        return float(_FLOAT4_VALUE.unpack(_FLOAT4.pack(b))[0])

    def reaches(b: int) -> bool:
        return Decimal(f"{value(b):.6g}") >= boundary

    while not reaches(bits):
        bits += 1
    while reaches(bits - 1):
        bits -= 1
    return value(bits)


_FLOAT4 = struct.Struct(">I")
_FLOAT4_VALUE = struct.Struct(">f")


@functools.cache
def _thresholds(boundaries: tuple[Decimal, ...]) -> list[float]:
    """`_float4_from` of each boundary: width_bucket(real, these) bins float4 values as their numeric values
    would be binned, without making a numeric of each (which took 0.9 of 1.5 s binning 1,000,000 shares)."""
    return [_float4_from(b) for b in boundaries]


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), DECIMALS)


@dataclass(frozen=True)
class QuestionFilter:
    family_id: uuid.UUID
    question_id: str
    primitive: str
    tenant: str | None = None
    """None: every tenant (a key that reads across tenants)."""
    metadata: dict[str, Any] | None = None
    """The job's metadata contains this object."""
    since: datetime | None = None
    """Jobs created at or after this time."""
    until: datetime | None = None
    """Jobs created before this time."""


def _answers(f: QuestionFilter, *, checked: bool = False) -> tuple[str, dict[str, Any]]:
    """`FROM ... WHERE ...` giving the question's answers `a` of the family's jobs that pass the job filters
    (decision_job lists them; each job's answers are one range of decision_answer's (job, question) index).

    `checked`: only answers of the family with the question's primitive. Unchecked, the caller groups by
    a.family_id and a.primitive and keeps `_ours`: the planner then sees just the index's condition and
    estimates the rows it reads. With the two equalities it guessed 4 a job instead of 100, so it sorted
    100,000 rows (on disk, for a choice) where hashing them into a few groups does; unchecked, it also picks
    between reading the partition whole (when the question is most of it) and one index range a job. Measured
    on 1,000,000 answers (loaded machine): 52 ms for a question alone in its partition, 246 ms for one beside a
    1,000,000-answer question, 431 ms for that question, where a nested loop forced on every read took 170,
    127 and 1,400+ ms."""
    params = {"family": f.family_id, "question": f.question_id, "primitive": f.primitive}
    jobs = Where(["dj.family_id = :family"], params)
    jobs.add("dj.tenant = :tenant", "tenant", f.tenant)
    joined = jobs.jobs("j", since=f.since, until=f.until, metadata=f.metadata)
    join = " JOIN job j ON j.id = dj.job_id" if joined else ""
    checks = " AND a.family_id = :family AND a.primitive = :primitive" if checked else ""
    source = (
        f"FROM decision_answer a WHERE a.job_id IN (SELECT dj.job_id FROM decision_job dj{join}"
        f" WHERE {jobs.sql()}) AND a.question_id = :question{checks}"
    )
    return source, jobs.params


def _ours(f: QuestionFilter, family: uuid.UUID, primitive: str) -> bool:
    """Whether a group of unchecked `_answers` is the question's: answered with a version of its family, as its
    primitive (an id whose primitive changed between versions is another question)."""
    return family == f.family_id and primitive == f.primitive


async def _aggregating(session: AsyncSession) -> None:
    """Settings for the rest of this read's transaction. No JIT: it compiled a distribution's expressions for
    60-65 ms of a 150-250 ms read. work_mem 64MB: the planner guesses a bin's groups from the distinct values
    binned (a share's, about one an answer), and at 4MB it sorted 1,000,000 rows on disk to find the 10 bins
    it would have hashed them into (1.5 s against 1.1 s); the groups are few, so little of it is used."""
    await session.execute(text("SET LOCAL jit = off"))
    await session.execute(text("SET LOCAL work_mem = '64MB'"))


def _moments(answers: int, n: int, total: float, squares: float) -> dict[str, Any]:
    """A numeric question's answers, answered (n), mean and sample standard deviation, from the count of values,
    their sum and their sum of squares."""
    mean = spread = None
    if n:
        mean = total / n
        if n >= 2:
            spread = _round(math.sqrt(max((squares - n * mean * mean) / (n - 1), 0.0)))
        mean = _round(mean)
    return {"answers": answers, "answered": n, "mean": mean, "stddev": spread}


async def _noul(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    source, params = _answers(f)
    # Bin k (0-based) holds shares in [k/10, (k+1)/10) as numeric (float4's 6 digits, so a stored 0.9, which
    # is 0.899999976 as float8, falls in the 0.9 bin); a share of 1 or more in the last bin, below 0 the first.
    # One pass, grouped by bin; the mean and spread come from the bins' sums.
    params["bins"] = _thresholds(tuple(Decimal(k) / SHARE_BINS for k in range(1, SHARE_BINS)))
    rows = await session.execute(
        text(
            "SELECT a.family_id, a.primitive, width_bucket(a.share, CAST(:bins AS real[])) AS bin, count(*),"
            " count(a.share), sum(a.share::float8), sum(a.share::float8 * a.share::float8)"
            f" {source} GROUP BY 1, 2, 3"
        ),
        params,
    )
    counts = [0] * SHARE_BINS
    answers = answered = 0
    total = squares = 0.0
    for family, primitive, k, n, n_share, s, sq in rows:
        if not _ours(f, family, primitive):
            continue
        answers += n
        if k is not None:
            counts[max(0, min(int(k), SHARE_BINS - 1))] += n
            answered += n_share
            total += s or 0.0
            squares += sq or 0.0
    return {
        **_moments(answers, answered, total, squares),
        "histogram": [
            {"from": k / SHARE_BINS, "to": (k + 1) / SHARE_BINS, "count": counts[k]} for k in range(SHARE_BINS)
        ],
    }


async def _version_options(session: AsyncSession, f: QuestionFilter) -> dict[uuid.UUID, list[str]]:
    """Each version of the family asking the question as a choice: its options in order (as `probabilities`
    holds them)."""
    found = {}
    for version in await question_sets.versions(session, f.family_id):
        for question in version.questions:
            if question["id"] == f.question_id and question["type"] == "choice":
                found[version.id] = list(question.get("criteria") or {})
    return found


async def _choice(session: AsyncSession, f: QuestionFilter, options: Sequence[str]) -> dict[str, Any]:
    """Winners and the winners' mean confidence by option, and each option's mean probability. `options` (the
    set's) are read from `probabilities`, each version's in its own order, in the same pass; without them every
    option found is read (jsonb_each, slower)."""
    means: dict[str, float | None] = {}
    if options:
        source, params = _answers(f)
        orders = await _version_options(session, f)
        width = max((len(order) for order in orders.values()), default=0)
        picks = "".join(
            f", sum(a.probabilities[{k}]::float8), count(a.probabilities[{k}])" for k in range(1, width + 1)
        )
        rows = list(
            await session.execute(
                text(
                    "SELECT a.family_id, a.primitive, a.question_set_id, a.choice, count(*),"
                    f" sum(a.confidence::float8), count(a.confidence){picks} {source} GROUP BY 1, 2, 3, 4"
                ),
                params,
            )
        )
        grouped: dict[str | None, list[float]] = {}
        totals = dict.fromkeys(options, 0.0)
        counts = dict.fromkeys(options, 0)
        for family, primitive, version, choice, n, confidence, confident, *sums in rows:
            if not _ours(f, family, primitive):
                continue
            won = grouped.setdefault(choice, [0, 0.0, 0])
            won[0] += n
            won[1] += confidence or 0.0
            won[2] += confident
            for k, name in enumerate(orders.get(version, [])):
                if name in totals and sums[2 * k + 1]:
                    totals[name] += sums[2 * k]
                    counts[name] += sums[2 * k + 1]
        winners = [(choice, int(n), total / confident if confident else None)
                   for choice, (n, total, confident) in grouped.items()]  # fmt: skip
        means = {name: _round(totals[name] / counts[name]) if counts[name] else None for name in options}
    else:
        source, params = _answers(f, checked=True)
        winners = list(
            await session.execute(text(f"SELECT a.choice, count(*), avg(a.confidence) {source} GROUP BY 1"), params)
        )
        found = await session.execute(
            text(
                "SELECT p.key, avg(p.value::float8) FROM (SELECT a.option_probabilities"
                f" {source}) a, jsonb_each_text(CASE jsonb_typeof(a.option_probabilities) WHEN 'object'"
                " THEN a.option_probabilities END) p GROUP BY 1"
            ),
            params,
        )
        means = {key: _round(value) for key, value in found}
    entries: dict[str | None, dict[str, Any]] = {
        option: {"option": option, "wins": 0, "mean_confidence": None, "mean_probability": means.get(option)}
        for option in [*options, *means]
    }
    for option, n, confidence in winners:
        entry = entries.setdefault(
            option, {"option": option, "wins": 0, "mean_confidence": None, "mean_probability": None}
        )
        entry["wins"] = n
        entry["mean_confidence"] = _round(confidence)
    return {"answers": sum(n for _, n, _ in winners), "options": list(entries.values())}


async def _score(session: AsyncSession, f: QuestionFilter, levels: int) -> dict[str, Any]:
    source, params = _answers(f)
    top = max(levels - 1, 0)
    # A mean level is counted at its nearest level (scores are 0-based level indices), halves up as numeric
    # (float4's 6 digits) rounds them, clamped to the scale.
    params["levels"] = _thresholds(tuple(Decimal(k) - Decimal("0.5") for k in range(1, top + 1)))
    rows = await session.execute(
        text(
            "SELECT a.family_id, a.primitive, CASE WHEN a.score IS NOT NULL"
            " THEN width_bucket(a.score, CAST(:levels AS real[])) END AS level, count(*), count(a.score),"
            " sum(a.score::float8), sum(a.score::float8 * a.score::float8), min(a.score), max(a.score),"
            f" sum(a.confidence::float8), count(a.confidence) {source} GROUP BY 1, 2, 3"
        ),
        params,
    )
    counts = [0] * levels
    answers = answered = confident = 0
    total = squares = confidence = 0.0
    low: float | None = None
    high: float | None = None
    for family, primitive, level, n, n_score, s, sq, lo, hi, conf, n_conf in rows:
        if not _ours(f, family, primitive):
            continue
        answers += n
        confidence += conf or 0.0
        confident += n_conf
        if level is None:
            continue
        if levels:
            counts[level] += n
        answered += n_score
        total += s or 0.0
        squares += sq or 0.0
        low = lo if low is None else min(low, lo)
        high = hi if high is None else max(high, hi)
    return {
        **_moments(answers, answered, total, squares),
        "min": _round(low),
        "max": _round(high),
        "mean_confidence": _round(confidence / confident) if confident else None,
        "histogram": [{"level": k, "count": counts[k]} for k in range(levels)],
    }


async def _span(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    source, params = _answers(f)
    # span_count and span_ms are the stored spans' number and total duration (NULL: no list, or no span with
    # both ends), so no span list is walked here.
    rows = await session.execute(
        text(
            "SELECT a.family_id, a.primitive, count(*), count(*) FILTER (WHERE a.span_count > 0),"
            " coalesce(sum(a.span_count), 0), coalesce(sum(a.span_ms) FILTER (WHERE a.span_count > 0), 0),"
            f" coalesce(sum(a.window_end_ms - a.window_start_ms), 0) {source} GROUP BY 1, 2"
        ),
        params,
    )
    totals = [0, 0, 0, 0, 0]
    for family, primitive, *sums in rows:
        if _ours(f, family, primitive):
            totals = [t + int(v) for t, v in zip(totals, sums, strict=True)]
    return dict(zip(("answers", "with_spans", "spans", "total_span_ms", "total_window_ms"), totals, strict=True))


async def distribution(
    session: AsyncSession, f: QuestionFilter, *, levels: int = 0, options: Sequence[str] = ()
) -> dict[str, Any]:
    """The question's answers summed up by primitive: noul a histogram of shares in 10 bins with their mean
    and spread; choice each option's wins (with the winners' mean confidence) and mean probability (`options`:
    the set's, read in one pass); score mean, spread and range of the mean levels and a histogram over the
    `levels` levels; span how many windows had spans, how many, and their total duration."""
    await _aggregating(session)
    if f.primitive == "noul":
        return await _noul(session, f)
    if f.primitive == "choice":
        return await _choice(session, f, options)
    if f.primitive == "score":
        return await _score(session, f, levels)
    return await _span(session, f)


_STRENGTH = {
    "noul": "a.share",
    "choice": "(a.option_probabilities->>CAST(:option AS text))::float8",
    "score": "a.score",
    "span": "a.span_ms",
}


def _ranked(direction: str, strength: str, source: str, distinct: bool) -> str:
    """Answers ranked by strength, limited; `distinct`: one per recording (its strongest window) before the
    limit, which sorts every answer, where without it only the top `:limit` rows are kept while scanning."""
    inner = (
        f"SELECT DISTINCT ON (a.job_id, a.source_index) a.*, {strength} AS strength {source}"
        f" ORDER BY a.job_id, a.source_index, strength {direction} NULLS LAST, a.window_index"
        if distinct
        else f"SELECT a.*, {strength} AS strength {source}"
    )
    return (
        "SELECT r.job_id, r.source_index, r.source_url, r.window_index, r.window_start_ms, r.window_end_ms, r.share,"
        f" r.choice, r.confidence, r.score, r.created_at, r.strength, j.metadata FROM ({inner}) r"
        " JOIN job j ON j.id = r.job_id WHERE r.strength IS NOT NULL"
        f" ORDER BY r.strength {direction}, r.job_id, r.source_index, r.window_index LIMIT :limit"
    )


# Rows read per recording asked for before falling back to the full per-recording sort: most recordings are
# a window or a few, so the strongest 4N answers usually hold N recordings.
_OVERREAD = 4


async def strongest(
    session: AsyncSession, f: QuestionFilter, *, limit: int, option: str | None = None, lowest: bool = False
) -> list[dict[str, Any]]:
    """The recordings (job, source) whose answer is strongest (`lowest`: weakest), each by its strongest
    window: noul by share, choice by `option`'s probability, score by mean level, span by total span time."""
    source, params = _answers(f, checked=True)
    direction = "ASC" if lowest else "DESC"
    strength = _STRENGTH[f.primitive]
    params.update(limit=limit * _OVERREAD, option=option)
    await _aggregating(session)
    rows = list(await session.execute(text(_ranked(direction, strength, source, distinct=False)), params))
    seen: set[tuple[uuid.UUID, int]] = set()
    picked = []
    for r in rows:
        if (r.job_id, r.source_index) not in seen:
            seen.add((r.job_id, r.source_index))
            picked.append(r)
    if len(picked) < limit and len(rows) == limit * _OVERREAD:
        params["limit"] = limit
        picked = list(await session.execute(text(_ranked(direction, strength, source, distinct=True)), params))
    return [
        {
            "job_id": str(r.job_id),
            "source_index": r.source_index,
            "source_url": r.source_url,
            "window_index": r.window_index,
            "window_start_ms": r.window_start_ms,
            "window_end_ms": r.window_end_ms,
            "strength": _round(r.strength),
            "share": _round(r.share),
            "choice": r.choice,
            "confidence": _round(r.confidence),
            "score": _round(r.score),
            "answered_at": r.created_at.isoformat(),
            "job_metadata": r.metadata,
        }
        for r in picked[:limit]
    ]


# --- One job's answers ---------------------------------------------------------------------------------------

ANSWER_FIELDS = (
    "source_index", "source_url", "window_index", "window_start_ms", "window_end_ms", "question_id", "primitive",
    "share", "choice", "confidence", "option_probabilities", "score", "level_probabilities", "spans", "run_id",
    "question_set_id", "created_at", "raw",
)  # fmt: skip
_REALS = frozenset({"share", "confidence", "score"})


def encode_cursor(row: dict[str, Any]) -> str:
    """The position after `row` in a job's answers (question, source, window), opaque to clients."""
    key = [row["question_id"], row["source_index"], row["window_index"]]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode()


def decode_cursor(raw: str) -> tuple[str, int, int]:
    """`encode_cursor`'s inverse; ValueError when `raw` is not one."""
    try:
        question, source, window = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise ValueError(raw) from exc
    if not (isinstance(question, str) and isinstance(source, int) and isinstance(window, int)):
        raise ValueError(raw)
    if "\x00" in question or not (0 <= source < 2**31 and 0 <= window < 2**31):
        raise ValueError(raw)
    return question, source, window


async def job_answers(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[str, int, int] | None = None,
    question_id: str | None = None,
    source_index: int | None = None,
) -> list[dict[str, Any]]:
    """A page of a job's answers in the primary key's order: question id, then source, then window."""
    where = Where(["job_id = :job"], {"job": job_id, "limit": limit})
    if after is not None:
        where.clauses.append("(question_id, source_index, window_index) > (:q, :s, :w)")
        where.params.update(q=after[0], s=after[1], w=after[2])
    where.add("question_id = :question", "question", question_id)
    where.add("source_index = :source", "source", source_index)
    rows = await session.execute(
        text(
            f"SELECT {', '.join(ANSWER_FIELDS)} FROM decision_answer WHERE {where.sql()}"
            " ORDER BY question_id, source_index, window_index LIMIT :limit"
        ),
        where.params,
    )
    out = []
    for r in rows.mappings():
        item = dict(r)
        for name in _REALS:
            item[name] = _round(item[name])
        out.append(item)
    return out


CSV_COLUMNS = (
    "job_id", "source_index", "source_url", "window_index", "window_start_ms", "window_end_ms", "question_id",
    "primitive", "share", "choice", "confidence", "score", "option_probabilities", "level_probabilities", "spans",
    "run_id", "question_set_id", "raw",
)  # fmt: skip
_TEXT = frozenset({"source_url", "question_id", "choice"})
_JSON = frozenset({"option_probabilities", "level_probabilities", "spans", "raw"})


def _csv_expr(column: str) -> str:
    if column in _REALS:
        # Through float8, whose exact value Python rounds too: float4::numeric keeps 6 digits and rounds twice.
        return f"round({column}::float8::numeric, {DECIMALS})"
    if column in _TEXT:
        return csv_cell(column)
    if column in _JSON:
        return csv_cell(f"{column}::text")
    return column


async def job_answers_csv(session: AsyncSession, job_id: uuid.UUID) -> AsyncIterator[bytes]:
    """A job's answers as CSV made by Postgres (COPY ... TO STDOUT), recording by recording (source, window,
    question id), streamed as the server sends them; JSON columns as JSON text."""
    select = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(sql.SQL(_csv_expr(c)), sql.Identifier(c)) for c in CSV_COLUMNS
    )
    query = sql.SQL(
        "COPY (SELECT {} FROM decision_answer WHERE job_id = {} ORDER BY source_index, window_index, question_id)"
        " TO STDOUT (FORMAT csv, HEADER true)"
    ).format(select, sql.Literal(job_id))
    conn = await driver_connection(session)
    async with conn.cursor() as cursor, cursor.copy(query) as copy:
        async for block in copy:
            yield bytes(block)
