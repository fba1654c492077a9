"""Audio Decisions answers as analysts read them: one question's answers across jobs (its distribution and the
recordings that answer it most strongly), and one job's answers as pages or as CSV made by Postgres.

Across jobs a question is one (question set family, question id, primitive): versions of a set share their
questions' answers by id, and an id whose primitive changed between versions is a different question. The
family's jobs come from decision_job (filtered by tenant, job metadata and job creation time there), and each
job's answers to the question are one range of decision_answer's primary key (job, question, ...).
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.analytics import csv_cell
from app.store.db import driver_connection

SHARE_BINS = 10
# Answers are float4 (about 7 significant digits); reads carry 4 decimals, as prediction scores do.
DECIMALS = 4


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


def _where(f: QuestionFilter) -> tuple[str, dict[str, Any]]:
    """Conditions selecting the question's answers `a`: those of the family's jobs that pass the job filters
    (decision_job lists them; each is then a range of decision_answer's primary key)."""
    jobs = ["dj.family_id = :family"]
    params: dict[str, Any] = {"family": f.family_id, "question": f.question_id, "primitive": f.primitive}
    if f.tenant is not None:
        jobs.append("dj.tenant = :tenant")
        params["tenant"] = f.tenant
    if f.since is not None:
        jobs.append("j.created_at >= :since")
        params["since"] = f.since
    if f.until is not None:
        jobs.append("j.created_at < :until")
        params["until"] = f.until
    if f.metadata:
        jobs.append("j.metadata @> CAST(:meta AS jsonb)")
        params["meta"] = orjson.dumps(f.metadata).decode()
    join = " JOIN job j ON j.id = dj.job_id" if len(jobs) > 1 + (f.tenant is not None) else ""
    where = (
        f"a.job_id IN (SELECT dj.job_id FROM decision_job dj{join} WHERE {' AND '.join(jobs)})"
        " AND a.question_id = :question AND a.family_id = :family AND a.primitive = :primitive"
    )
    return where, params


def _mean_spread(n: int, total: float, squares: float) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation from a count, a sum and a sum of squares."""
    if not n:
        return None, None
    mean = total / n
    if n < 2:
        return _round(mean), None
    variance = max((squares - n * mean * mean) / (n - 1), 0.0)
    return _round(mean), _round(math.sqrt(variance))


async def _noul(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    where, params = _where(f)
    # Bin k (0-based) holds shares in [k/10, (k+1)/10); a share of exactly 1 falls in the last bin. One pass,
    # grouped by bin; the mean and spread come from the bins' sums.
    rows = await session.execute(
        text(
            # least() and greatest() skip NULLs: a missing share is binned explicitly as NULL. Binned as numeric
            # (float4's 6 digits), so a stored 0.9 (0.899999976 as float8) falls in the 0.9 bin.
            "SELECT CASE WHEN a.share IS NOT NULL THEN least(width_bucket(a.share::numeric, 0, 1,"
            f" {SHARE_BINS}), {SHARE_BINS}) - 1 END AS bin, count(*),"
            " count(a.share), sum(a.share::float8), sum(a.share::float8 * a.share::float8)"
            f" FROM decision_answer a WHERE {where} GROUP BY 1"
        ),
        params,
    )
    counts = [0] * SHARE_BINS
    answers = answered = 0
    total = squares = 0.0
    for k, n, n_share, s, sq in rows:
        answers += n
        if k is not None:
            counts[max(0, min(int(k), SHARE_BINS - 1))] += n
            answered += n_share
            total += s or 0.0
            squares += sq or 0.0
    mean, spread = _mean_spread(answered, total, squares)
    return {
        "answers": answers,
        "answered": answered,
        "mean": mean,
        "stddev": spread,
        "histogram": [
            {"from": k / SHARE_BINS, "to": (k + 1) / SHARE_BINS, "count": counts[k]} for k in range(SHARE_BINS)
        ],
    }


async def _choice(session: AsyncSession, f: QuestionFilter, options: Sequence[str]) -> dict[str, Any]:
    """Winners and the winners' mean confidence by option, and each option's mean probability. `options` (the
    set's) are read by name in the same pass; without them every option found is read (jsonb_each, slower)."""
    where, params = _where(f)
    means: dict[str, float | None] = {}
    if options:
        picks = ", ".join(
            f"sum((a.option_probabilities->>CAST(:o{i} AS text))::float8),"
            f" count(a.option_probabilities->>CAST(:o{i} AS text))"
            for i in range(len(options))
        )
        params.update({f"o{i}": option for i, option in enumerate(options)})
        rows = list(
            await session.execute(
                text(
                    f"SELECT a.choice, count(*), avg(a.confidence), {picks} FROM decision_answer a WHERE {where}"
                    " GROUP BY a.choice"
                ),
                params,
            )
        )
        winners = [(r[0], r[1], r[2]) for r in rows]
        for i, option in enumerate(options):
            total = sum(r[3 + 2 * i] or 0.0 for r in rows)
            n = sum(r[4 + 2 * i] for r in rows)
            means[option] = _round(total / n) if n else None
    else:
        winners = list(
            await session.execute(
                text(f"SELECT a.choice, count(*), avg(a.confidence) FROM decision_answer a WHERE {where} GROUP BY 1"),
                params,
            )
        )
        found = await session.execute(
            text(
                "SELECT p.key, avg(p.value::float8) FROM decision_answer a, jsonb_each_text(CASE"
                f" jsonb_typeof(a.option_probabilities) WHEN 'object' THEN a.option_probabilities END) p WHERE {where}"
                " GROUP BY 1"
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
    where, params = _where(f)
    top = max(levels - 1, 0)
    # A mean level is counted at its nearest level (scores are 0-based level indices), clamped to the scale.
    rows = await session.execute(
        text(
            # numeric rounds halves up (float8's round is the platform's, usually to even).
            f"SELECT CASE WHEN a.score IS NOT NULL THEN least(greatest(round(a.score::numeric), 0), {top})::int END"
            " AS level,"
            " count(*), count(a.score),"
            " sum(a.score::float8), sum(a.score::float8 * a.score::float8), min(a.score), max(a.score),"
            f" sum(a.confidence::float8), count(a.confidence) FROM decision_answer a WHERE {where} GROUP BY 1"
        ),
        params,
    )
    counts = [0] * levels
    answers = answered = confident = 0
    total = squares = confidence = 0.0
    low: float | None = None
    high: float | None = None
    for level, n, n_score, s, sq, lo, hi, conf, n_conf in rows:
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
    mean, spread = _mean_spread(answered, total, squares)
    return {
        "answers": answers,
        "answered": answered,
        "mean": mean,
        "stddev": spread,
        "min": _round(low),
        "max": _round(high),
        "mean_confidence": _round(confidence / confident) if confident else None,
        "histogram": [{"level": k, "count": counts[k]} for k in range(levels)],
    }


async def _span(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    where, params = _where(f)
    # Span times are read only where there are spans (Hume returns an empty list when none reaches 0.5).
    row = (
        await session.execute(
            text(
                f"""
                SELECT count(*), count(*) FILTER (WHERE n > 0), coalesce(sum(n), 0),
                       coalesce(sum(CASE WHEN n > 0 THEN (SELECT sum(e.end_ms - e.start_ms)
                                     FROM jsonb_to_recordset(s.spans) e(start_ms bigint, end_ms bigint)) END), 0),
                       coalesce(sum(window_ms), 0)
                FROM (SELECT a.spans, a.window_end_ms - a.window_start_ms AS window_ms,
                             CASE jsonb_typeof(a.spans) WHEN 'array' THEN jsonb_array_length(a.spans) ELSE 0 END AS n
                      FROM decision_answer a WHERE {where}) s
                """
            ),
            params,
        )
    ).one()
    return {
        "answers": row[0],
        "with_spans": row[1],
        "spans": int(row[2]),
        "total_span_ms": int(row[3]),
        "total_window_ms": int(row[4]),
    }


async def distribution(
    session: AsyncSession, f: QuestionFilter, *, levels: int = 0, options: Sequence[str] = ()
) -> dict[str, Any]:
    """The question's answers summed up by primitive: noul a histogram of shares in 10 bins with their mean
    and spread; choice each option's wins (with the winners' mean confidence) and mean probability (`options`:
    the set's, read in one pass); score mean, spread and range of the mean levels and a histogram over the
    `levels` levels; span how many windows had spans, how many, and their total duration."""
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
    "span": "(SELECT sum((e->>'end_ms')::bigint - (e->>'start_ms')::bigint) FROM jsonb_array_elements("
    "CASE jsonb_typeof(a.spans) WHEN 'array' THEN a.spans END) e WHERE jsonb_typeof(e->'end_ms') = 'number')",
}


def _ranked(direction: str, strength: str, where: str, distinct: bool) -> str:
    """Answers ranked by strength, limited; `distinct`: one per recording (its strongest window) before the
    limit, which sorts every answer, where without it only the top `:limit` rows are kept while scanning."""
    inner = (
        f"SELECT DISTINCT ON (a.job_id, a.source_index) a.*, {strength} AS strength FROM decision_answer a"
        f" WHERE {where} ORDER BY a.job_id, a.source_index, strength {direction} NULLS LAST, a.window_index"
        if distinct
        else f"SELECT a.*, {strength} AS strength FROM decision_answer a WHERE {where}"
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
    where, params = _where(f)
    direction = "ASC" if lowest else "DESC"
    strength = _STRENGTH[f.primitive]
    params.update(limit=limit * _OVERREAD, option=option)
    rows = list(await session.execute(text(_ranked(direction, strength, where, distinct=False)), params))
    seen: set[tuple[uuid.UUID, int]] = set()
    picked = []
    for r in rows:
        if (r.job_id, r.source_index) not in seen:
            seen.add((r.job_id, r.source_index))
            picked.append(r)
    if len(picked) < limit and len(rows) == limit * _OVERREAD:
        params["limit"] = limit
        picked = list(await session.execute(text(_ranked(direction, strength, where, distinct=True)), params))
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
    clauses = ["job_id = :job"]
    params: dict[str, Any] = {"job": job_id, "limit": limit}
    if after is not None:
        clauses.append("(question_id, source_index, window_index) > (:q, :s, :w)")
        params.update(q=after[0], s=after[1], w=after[2])
    if question_id is not None:
        clauses.append("question_id = :question")
        params["question"] = question_id
    if source_index is not None:
        clauses.append("source_index = :source")
        params["source"] = source_index
    rows = await session.execute(
        text(
            f"SELECT {', '.join(ANSWER_FIELDS)} FROM decision_answer WHERE {' AND '.join(clauses)}"
            " ORDER BY question_id, source_index, window_index LIMIT :limit"
        ),
        params,
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
