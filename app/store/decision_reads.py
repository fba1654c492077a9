"""Audio Decisions answers as analysts read them: one question's answers across jobs (its distribution and the
recordings that answer it most strongly), and one job's answers as pages or as CSV made by Postgres.

Across jobs a question is one (question set family, question id, primitive): versions of a set share their
questions' answers by id, and an id whose primitive changed between versions is a different question. Every
read is served by ix_decision_answer_family_question (family, question, created_at).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.analytics import _cell as csv_cell
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
    """Answers stored at or after this time."""
    until: datetime | None = None
    """Answers stored before this time."""


def _where(f: QuestionFilter) -> tuple[str, str, dict[str, Any]]:
    """(joins, conditions, parameters) selecting the question's answers `a`."""
    clauses = ["a.family_id = :family", "a.question_id = :question", "a.primitive = :primitive"]
    params: dict[str, Any] = {"family": f.family_id, "question": f.question_id, "primitive": f.primitive}
    joins = ""
    if f.tenant is not None:
        clauses.append("a.tenant = :tenant")
        params["tenant"] = f.tenant
    if f.since is not None:
        clauses.append("a.created_at >= :since")
        params["since"] = f.since
    if f.until is not None:
        clauses.append("a.created_at < :until")
        params["until"] = f.until
    if f.metadata:
        joins = "JOIN job j ON j.id = a.job_id"
        clauses.append("j.metadata @> CAST(:meta AS jsonb)")
        params["meta"] = orjson.dumps(f.metadata).decode()
    return joins, " AND ".join(clauses), params


async def _noul(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    joins, where, params = _where(f)
    # Bin k (1-based) holds shares in [(k-1)/10, k/10); a share of exactly 1 falls in the last bin.
    bins = ", ".join(f"count(*) FILTER (WHERE b = {k})" for k in range(1, SHARE_BINS + 1))
    row = (
        await session.execute(
            text(
                f"SELECT count(*), count(share), avg(share), stddev_samp(share), {bins} FROM ("
                f" SELECT a.share, least(width_bucket(a.share, 0, 1, {SHARE_BINS}), {SHARE_BINS}) AS b"
                f" FROM decision_answer a {joins} WHERE {where}) s"
            ),
            params,
        )
    ).one()
    return {
        "answers": row[0],
        "answered": row[1],
        "mean": _round(row[2]),
        "stddev": _round(row[3]),
        "histogram": [
            {"from": k / SHARE_BINS, "to": (k + 1) / SHARE_BINS, "count": row[4 + k]} for k in range(SHARE_BINS)
        ],
    }


async def _choice(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    joins, where, params = _where(f)
    rows = await session.execute(
        text(
            f"""
            WITH a AS (SELECT a.choice, a.confidence, a.option_probabilities FROM decision_answer a {joins}
                       WHERE {where})
            SELECT 'winner' AS kind, choice AS option, count(*)::float8 AS n, avg(confidence) AS v FROM a
            GROUP BY choice
            UNION ALL
            SELECT 'probability', p.key, count(*), avg(p.value::float8) FROM a,
                   jsonb_each_text(CASE jsonb_typeof(a.option_probabilities) WHEN 'object'
                                   THEN a.option_probabilities END) p
            GROUP BY p.key
            """
        ),
        params,
    )
    options: dict[str | None, dict[str, Any]] = {}
    answers = 0
    for kind, option, n, value in rows:
        entry = options.setdefault(option, {"option": option, "wins": 0, "mean_confidence": None,
                                            "mean_probability": None})  # fmt: skip
        if kind == "winner":
            entry["wins"] = int(n)
            entry["mean_confidence"] = _round(value)
            answers += int(n)
        else:
            entry["mean_probability"] = _round(value)
    return {"answers": answers, "options": list(options.values())}


async def _score(session: AsyncSession, f: QuestionFilter, levels: int) -> dict[str, Any]:
    joins, where, params = _where(f)
    top = max(levels - 1, 0)
    # A mean level is binned to its nearest level (scores are 0-based level indices), clamped to the scale.
    bins = ", ".join(f"count(*) FILTER (WHERE b = {k})" for k in range(levels))
    row = (
        await session.execute(
            text(
                f"SELECT count(*), count(score), avg(score), stddev_samp(score), min(score), max(score),"
                f" avg(confidence){', ' + bins if bins else ''} FROM ("
                f" SELECT a.score, a.confidence, least(greatest(round(a.score), 0), {top}) AS b"
                f" FROM decision_answer a {joins} WHERE {where}) s"
            ),
            params,
        )
    ).one()
    return {
        "answers": row[0],
        "answered": row[1],
        "mean": _round(row[2]),
        "stddev": _round(row[3]),
        "min": _round(row[4]),
        "max": _round(row[5]),
        "mean_confidence": _round(row[6]),
        "histogram": [{"level": k, "count": row[7 + k]} for k in range(levels)],
    }


async def _span(session: AsyncSession, f: QuestionFilter) -> dict[str, Any]:
    joins, where, params = _where(f)
    row = (
        await session.execute(
            text(
                f"""
                SELECT count(*), count(*) FILTER (WHERE n > 0), coalesce(sum(n), 0), coalesce(sum(dur), 0),
                       coalesce(sum(window_ms), 0)
                FROM (SELECT a.window_end_ms - a.window_start_ms AS window_ms,
                             (SELECT count(*) FROM jsonb_array_elements(a.spans) e) AS n,
                             (SELECT sum((e->>'end_ms')::bigint - (e->>'start_ms')::bigint)
                              FROM jsonb_array_elements(a.spans) e
                              WHERE jsonb_typeof(e->'end_ms') = 'number') AS dur
                      FROM decision_answer a {joins}
                      WHERE {where} AND jsonb_typeof(a.spans) = 'array') s
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


async def distribution(session: AsyncSession, f: QuestionFilter, *, levels: int = 0) -> dict[str, Any]:
    """The question's answers summed up by primitive: noul a histogram of shares in 10 bins with their mean
    and spread; choice each option's wins (with the winners' mean confidence) and mean probability; score
    mean, spread and range of the mean levels and a histogram over the `levels` levels; span how many
    windows had spans, how many, and their total duration."""
    if f.primitive == "noul":
        return await _noul(session, f)
    if f.primitive == "choice":
        return await _choice(session, f)
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


async def strongest(
    session: AsyncSession, f: QuestionFilter, *, limit: int, option: str | None = None, lowest: bool = False
) -> list[dict[str, Any]]:
    """The recordings (job, source) whose answer is strongest (`lowest`: weakest), each by its strongest
    window: noul by share, choice by `option`'s probability, score by mean level, span by total span time."""
    joins, where, params = _where(f)
    if f.metadata is None:
        joins = "JOIN job j ON j.id = a.job_id"
    params.update(limit=limit, option=option)
    direction = "ASC" if lowest else "DESC"
    rows = await session.execute(
        text(
            f"""
            SELECT * FROM (
                SELECT DISTINCT ON (a.job_id, a.source_index)
                       a.job_id, a.source_index, a.source_url, a.window_index, a.window_start_ms, a.window_end_ms,
                       a.share, a.choice, a.confidence, a.score, a.created_at, j.metadata,
                       {_STRENGTH[f.primitive]} AS strength
                FROM decision_answer a {joins}
                WHERE {where}
                ORDER BY a.job_id, a.source_index, strength {direction} NULLS LAST, a.window_index
            ) r WHERE strength IS NOT NULL
            ORDER BY strength {direction}, job_id, source_index LIMIT :limit
            """
        ),
        params,
    )
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
        for r in rows
    ]


# --- One job's answers ---------------------------------------------------------------------------------------

ANSWER_FIELDS = (
    "source_index", "source_url", "window_index", "window_start_ms", "window_end_ms", "question_id", "primitive",
    "share", "choice", "confidence", "option_probabilities", "score", "level_probabilities", "spans", "run_id",
    "question_set_id", "created_at", "raw",
)  # fmt: skip
_REALS = frozenset({"share", "confidence", "score"})


def encode_cursor(row: dict[str, Any]) -> str:
    """The position after `row` in a job's answers (source, window, question), opaque to clients."""
    key = [row["source_index"], row["window_index"], row["question_id"]]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode()


def decode_cursor(raw: str) -> tuple[int, int, str]:
    """`encode_cursor`'s inverse; ValueError when `raw` is not one."""
    try:
        source, window, question = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise ValueError(raw) from exc
    if not (isinstance(source, int) and isinstance(window, int) and isinstance(question, str)):
        raise ValueError(raw)
    if not (0 <= source < 2**31 and 0 <= window < 2**31):
        raise ValueError(raw)
    return source, window, question


async def job_answers(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[int, int, str] | None = None,
    question_id: str | None = None,
    source_index: int | None = None,
) -> list[dict[str, Any]]:
    """A page of a job's answers in (source, window, question id) order, the primary key's."""
    clauses = ["job_id = :job"]
    params: dict[str, Any] = {"job": job_id, "limit": limit}
    if after is not None:
        clauses.append("(source_index, window_index, question_id) > (:s, :w, :q)")
        params.update(s=after[0], w=after[1], q=after[2])
    if question_id is not None:
        clauses.append("question_id = :question")
        params["question"] = question_id
    if source_index is not None:
        clauses.append("source_index = :source")
        params["source"] = source_index
    rows = await session.execute(
        text(
            f"SELECT {', '.join(ANSWER_FIELDS)} FROM decision_answer WHERE {' AND '.join(clauses)}"
            " ORDER BY source_index, window_index, question_id LIMIT :limit"
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
    """A job's answers as CSV made by Postgres (COPY ... TO STDOUT), in the pages' order, streamed as the
    server sends them; JSON columns as JSON text."""
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
