"""Analyst queries: summaries, timelines, prediction pages and streamed exports, across jobs too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.db import driver_connection
from app.store.filters import Where
from app.store.tables import Job

# Scores are float4 in Postgres (about 7 significant digits, Hume's own output has fewer that mean anything);
# answers carry 4 decimals, not the 17 digits float8 conversion invents (0.49849674271212685).
SCORE_DECIMALS = 4


def _score(value: Any) -> float:
    return round(float(value), SCORE_DECIMALS)


async def emotion_names(session: AsyncSession) -> dict[str, list[str]]:
    rows = await session.execute(text("SELECT model, name FROM emotion ORDER BY model, position"))
    names: dict[str, list[str]] = {}
    for model, name in rows:
        names.setdefault(model, []).append(name)
    return names


async def summary(session: AsyncSession, job_id: uuid.UUID) -> dict[str, Any]:
    """Per model: prediction count and every emotion's mean and max, highest mean first.

    Read from the per-source aggregates written at ingest: a one-hour job is a few hundred rows here
    against tens of thousands of predictions. A prediction that does not score an emotion (Hume's v1 API
    lists only the expressions it judged present) counts as 0 in the mean, so means of sparse and dense
    models compare; `present` says in what share of the model's predictions the emotion was scored
    (1.0 for batch models, which score every emotion every time).
    """
    rows = await session.execute(
        text(
            """
            SELECT model, name, sum(mean * count) AS total, sum(count) AS n, max(max) AS max
            FROM emotion_stat WHERE job_id = :id
            GROUP BY model, position, name
            """
        ),
        {"id": job_id},
    )
    # model_stat also counts models whose predictions scored no emotion (they have no emotion_stat rows).
    counts = await session.execute(
        text("SELECT model, sum(predictions) FROM model_stat WHERE job_id = :id GROUP BY model"), {"id": job_id}
    )
    per_model = {m: int(n) for m, n in counts}
    models: dict[str, Any] = {m: {"predictions": n, "emotions": []} for m, n in sorted(per_model.items())}
    for model, name, total, n, peak in rows:
        predictions = per_model.get(model) or int(n)
        models[model]["emotions"].append(
            {
                "name": name,
                "mean": _score(float(total) / predictions),
                "max": _score(peak),
                "present": _score(int(n) / predictions),
            }
        )
    for model in models.values():
        model["emotions"].sort(key=lambda e: (-e["mean"], e["name"]))
    return models


async def _find_emotion(session: AsyncSession, model: str, emotion: str) -> tuple[int, str] | None:
    """(position, stored name) of a model's emotion, matched case-insensitively, the exact spelling first
    (names appended at ingest may differ from a canonical one only by case)."""
    result = await session.execute(
        text(
            "SELECT position, name FROM emotion WHERE model = :m AND lower(name) = lower(:n)"
            " ORDER BY name = :n DESC, position LIMIT 1"
        ),
        {"m": model, "n": emotion},
    )
    row = result.first()
    return None if row is None else (int(row.position), str(row.name))


async def emotion_positions(session: AsyncSession, model: str, names: Sequence[str]) -> dict[str, int]:
    """Positions in a model's score arrays of the emotions stored under exactly these names."""
    rows = await session.execute(
        text("SELECT name, position FROM emotion WHERE model = :m AND name = ANY(:names)"),
        {"m": model, "names": list(names)},
    )
    return {str(name): int(position) for name, position in rows}


async def emotion_position(session: AsyncSession, model: str, emotion: str) -> int | None:
    """An emotion's position in a model's score arrays."""
    found = await _find_emotion(session, model, emotion)
    return None if found is None else found[0]


@dataclass(frozen=True)
class JobScope:
    """Where a job's predictions are stored: its tenant's partitions (see prediction_partitions), from the
    job's creation on. Named in a query, it lets the planner read those partitions only, instead of probing
    every tenant's every month."""

    tenant: str
    since: datetime

    @classmethod
    def created(cls, tenant: str, created_at: datetime) -> JobScope:
        # A row's stored_at is its transaction's start, which follows the job's creation; a day earlier
        # allows for a transaction begun before the job's and reading it later (it costs a second partition
        # only for jobs made in a month's first day).
        return cls(tenant=tenant, since=created_at - timedelta(days=1))

    @classmethod
    def of(cls, job: Job) -> JobScope:
        return cls.created(job.tenant, job.created_at)


async def _scope(session: AsyncSession, job_id: uuid.UUID, scope: JobScope | None) -> JobScope | None:
    """`scope`, else the job's own (one read by primary key); None for no such job (its queries find nothing)."""
    if scope is not None:
        return scope
    row = (await session.execute(text("SELECT tenant, created_at FROM job WHERE id = :id"), {"id": job_id})).first()
    return None if row is None else JobScope.created(row.tenant, row.created_at)


def _scope_sql(scope: JobScope | None, alias: str = "p") -> tuple[str, dict[str, Any]]:
    if scope is None:
        return "", {}
    return (
        f" AND {alias}.tenant = :scope_tenant AND {alias}.stored_at >= :scope_since",
        {"scope_tenant": scope.tenant, "scope_since": scope.since},
    )


async def timelines(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    model: str,
    positions: Sequence[int],
    bucket_s: float,
    by_group: bool,
    scope: JobScope | None = None,
) -> list[list[dict[str, Any]]]:
    """Each emotion's (by its position) mean, max and counts per time bucket, in one scan of the job's
    predictions for all of them: the dashboard draws up to 8 lines, and one scan per line read a one-hour
    job's 33,000 rows that many times."""
    if not positions:
        return []
    group = "group_id" if by_group else "NULL::text"
    pruning, pruning_params = _scope_sql(await _scope(session, job_id, scope))
    # Positions are bound, never formatted: only their count shapes the statement.
    per_emotion = ", ".join(
        f"avg(coalesce(scores[:p{i}], 0)), max(scores[:p{i}]), count(scores[:p{i}])" for i in range(len(positions))
    )
    rows = await session.execute(
        text(
            f"""
            SELECT floor(time_begin / :bucket) * :bucket AS t, {group} AS grp, count(*) AS n, {per_emotion}
            FROM prediction p
            WHERE job_id = :id AND model = :model AND time_begin IS NOT NULL{pruning}
            GROUP BY 1, 2 ORDER BY 2 NULLS FIRST, 1
            """
        ),
        {"bucket": bucket_s, "id": job_id, "model": model, **pruning_params,
         **{f"p{i}": position + 1 for i, position in enumerate(positions)}},
    )  # fmt: skip
    out: list[list[dict[str, Any]]] = [[] for _ in positions]
    # As in the summary, a prediction without this emotion counts as 0; `present` says how many had it.
    for t, grp, n, *measured in rows:
        if not n:
            continue
        for i, points in enumerate(out):
            mean, peak, present = measured[3 * i : 3 * i + 3]
            point: dict[str, Any] = {
                "time_begin": float(t),
                "mean": _score(mean),
                "max": _score(peak or 0.0),
                "count": int(n),
                "present": int(present),
            }
            if by_group:
                point["group"] = grp
            points.append(point)
    return out


@dataclass(frozen=True)
class PredictionFilter:
    job_id: uuid.UUID
    model: str | None = None
    source_id: int | None = None
    group: str | None = None
    time_from: float | None = None
    time_to: float | None = None
    scope: JobScope | None = None
    """The job's tenant and creation (JobScope.of(job)); None: read from the job."""


async def _scoped(session: AsyncSession, f: PredictionFilter) -> PredictionFilter:
    return replace(f, scope=await _scope(session, f.job_id, f.scope))


def _where(f: PredictionFilter) -> tuple[str, dict[str, Any]]:
    pruning, params = _scope_sql(f.scope)
    where = Where(["p.job_id = :job_id" + pruning], {**params, "job_id": f.job_id})
    where.add("p.model = :model", "model", f.model)
    where.add("p.source_id = :source_id", "source_id", f.source_id)
    where.add("p.group_id = :grp", "grp", f.group)
    where.add("p.time_end >= :t_from", "t_from", f.time_from)
    where.add("p.time_begin < :t_to", "t_to", f.time_to)
    return where.sql(), where.params


_COLUMNS = (
    "p.id, p.source_id, s.url, p.file, p.model, p.group_id, p.frame, p.time_begin, p.time_end, p.prob, p.box,"
    " p.text, p.position_begin, p.position_end, p.confidence, p.speaker_confidence, p.scores, p.extras"
)


def _as_dict(row: Any, names: dict[str, list[str]]) -> dict[str, Any]:
    model_names = names.get(row.model, [])
    # Extras (facs, sentiment, entity, ...) first: they never shadow the columns' own keys.
    return {
        **(row.extras or {}),
        "id": row.id,
        "source_id": row.source_id,
        "source_url": row.url,
        "file": row.file,
        "model": row.model,
        "group": row.group_id,
        "frame": row.frame,
        "time_begin": row.time_begin,
        "time_end": row.time_end,
        "prob": row.prob,
        "box": dict(zip(("x", "y", "w", "h"), row.box, strict=True)) if row.box else None,
        "text": row.text,
        "position_begin": row.position_begin,
        "position_end": row.position_end,
        "confidence": row.confidence,
        "speaker_confidence": row.speaker_confidence,
        "scores": {n: round(s, SCORE_DECIMALS) for n, s in zip(model_names, row.scores, strict=False) if s is not None},
    }


async def predictions_page(
    session: AsyncSession, f: PredictionFilter, *, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    where, params = _where(await _scoped(session, f))
    if after_id is not None:
        where += " AND p.id > :after"
        params["after"] = after_id
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM prediction p JOIN source s ON s.id = p.source_id"
            f" WHERE {where} ORDER BY p.id LIMIT :limit"
        ),
        {**params, "limit": limit},
    )
    names = await emotion_names(session)
    return [_as_dict(r, names) for r in rows]


async def count_predictions(session: AsyncSession, f: PredictionFilter) -> int:
    """How many predictions the filter matches (an export's progress total)."""
    where, params = _where(await _scoped(session, f))
    return int((await session.execute(text(f"SELECT count(*) FROM prediction p WHERE {where}"), params)).scalar_one())


CSV_FIXED = (
    "source_url", "file", "model", "group", "frame", "time_begin", "time_end", "prob", "text", "confidence",
)  # fmt: skip


def csv_cell(column: str) -> str:
    """A text cell a spreadsheet will not run: a leading =, +, -, @, tab or CR gets a single quote in front
    (OWASP's CSV injection advice); numbers are numeric columns and stay as they are."""
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', chr(9), chr(13))"
        f" THEN chr(39) || {column} ELSE {column} END"
    )


_CSV_FIXED_SQL = (
    csv_cell("s.url"), csv_cell("p.file"), "p.model", csv_cell("p.group_id"), "p.frame", "p.time_begin", "p.time_end",
    "p.prob", csv_cell("p.text"), "p.confidence",
)  # fmt: skip


def _copy_where(f: PredictionFilter) -> sql.Composable:
    """The filter as literals: COPY takes no bind parameters (psycopg quotes each value)."""
    clauses: list[sql.Composable] = [sql.SQL("p.job_id = {}").format(sql.Literal(f.job_id))]
    if f.scope is not None:
        clauses.append(
            sql.SQL("p.tenant = {} AND p.stored_at >= {}").format(
                sql.Literal(f.scope.tenant), sql.Literal(f.scope.since)
            )
        )
    for column, op, value in (
        ("model", "=", f.model),
        ("source_id", "=", f.source_id),
        ("group_id", "=", f.group),
        ("time_end", ">=", f.time_from),
        ("time_begin", "<", f.time_to),
    ):
        if value is not None:
            clauses.append(sql.SQL("p.{} {} {}").format(sql.Identifier(column), sql.SQL(op), sql.Literal(value)))
    return sql.SQL(" AND ").join(clauses)


async def csv_copy(session: AsyncSession, f: PredictionFilter) -> AsyncIterator[bytes]:
    """Matching predictions as CSV made by Postgres (COPY ... TO STDOUT): fixed columns, then one column per
    emotion (the union over the job's models, in canonical order), rows in id order, streamed as the
    server sends them. Names come from the emotion table and are quoted as identifiers."""
    f = await _scoped(session, f)
    stat_models = await session.execute(
        text("SELECT DISTINCT model FROM emotion_stat WHERE job_id = :id"), {"id": f.job_id}
    )
    models = sorted(m for (m,) in stat_models if f.model is None or m == f.model)
    names = await emotion_names(session)
    columns: list[str] = []
    for model in sorted(models, key=lambda m: -len(names.get(m, []))):
        columns += [n for n in names.get(model, []) if n not in columns]
    select: list[sql.Composable] = [
        sql.SQL("{} AS {}").format(sql.SQL(expr), sql.Identifier(alias))
        for expr, alias in zip(_CSV_FIXED_SQL, CSV_FIXED, strict=True)
    ]
    # Through float8, whose exact value Python rounds too: float4::numeric keeps 6 digits and rounds twice.
    for name in columns:
        cases = [
            sql.SQL("WHEN {} THEN round(p.scores[{}]::float8::numeric, {})").format(
                sql.Literal(m), sql.Literal(names[m].index(name) + 1), sql.Literal(SCORE_DECIMALS)
            )
            for m in models
            if name in names[m]
        ]
        select.append(sql.SQL("CASE p.model {} END AS {}").format(sql.SQL(" ").join(cases), sql.Identifier(name)))
    query = sql.SQL(
        "COPY (SELECT {} FROM prediction p JOIN source s ON s.id = p.source_id WHERE {} ORDER BY p.id)"
        " TO STDOUT (FORMAT csv, HEADER true)"
    ).format(sql.SQL(", ").join(select), _copy_where(f))
    conn = await driver_connection(session)
    async with conn.cursor() as cursor, cursor.copy(query) as copy:
        async for block in copy:
            yield bytes(block)


async def emotion_name(session: AsyncSession, model: str, emotion: str) -> str | None:
    """The stored spelling of an emotion of a model (joy -> Joy)."""
    found = await _find_emotion(session, model, emotion)
    return None if found is None else found[1]


async def top_emotion(
    session: AsyncSession,
    *,
    model: str,
    emotion: str,
    limit: int,
    by: str = "mean",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """The sources (with their jobs) where an emotion is strongest, from the ingest-time aggregates.

    `emotion` must be the stored spelling (see emotion_name), so the (model, name, mean) index serves
    the ordering; filters on the job (creation time, metadata containment) apply as the index is walked.
    """
    order = "st.max" if by == "max" else "st.mean"
    where = Where(["st.model = :model", "st.name = :emotion"], {"model": model, "emotion": emotion, "limit": limit})
    where.jobs("j", since=created_after, until=created_before, metadata=metadata)
    where.add("j.tenant = :tenant", "tenant", tenant)
    rows = await session.execute(
        text(
            f"""
            SELECT st.job_id, st.source_id, s.url, s.filename, st.name, st.mean, st.max, st.count, j.created_at,
                   j.metadata
            FROM emotion_stat st JOIN job j ON j.id = st.job_id JOIN source s ON s.id = st.source_id
            WHERE {where.sql()}
            ORDER BY {order} DESC, st.job_id, st.source_id LIMIT :limit
            """
        ),
        where.params,
    )
    return [
        {
            "job_id": str(r.job_id),
            "source_id": r.source_id,
            "source_url": r.url,
            "source_filename": r.filename,
            "emotion": r.name,
            "mean": _score(r.mean),
            "max": _score(r.max),
            "predictions": r.count,
            "job_created_at": r.created_at.isoformat(),
            "job_metadata": r.metadata,
        }
        for r in rows
    ]


# --- Dashboard (app/dashboard) ----------------------------------------------------------------------------
# Reads the dashboard needs that no API endpoint made before; the pages otherwise call the functions above.


async def job_sources(session: AsyncSession, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """A job's sources in submission order, with their own and their files' errors."""
    rows = await session.execute(
        text(
            "SELECT id, position, kind, url, filename, error, file_errors FROM source"
            " WHERE job_id = :id ORDER BY position"
        ),
        {"id": job_id},
    )
    return [
        {
            "id": r.id, "position": r.position, "kind": r.kind, "url": r.url, "filename": r.filename,
            "error": r.error, "file_errors": list(r.file_errors or []),
        }
        for r in rows
    ]  # fmt: skip


async def time_extent(session: AsyncSession, job_id: uuid.UUID, *, scope: JobScope | None = None) -> dict[str, float]:
    """Per model, the latest time a prediction covers (seconds): sizes the timeline's default bucket."""
    pruning, params = _scope_sql(await _scope(session, job_id, scope))
    rows = await session.execute(
        text(
            "SELECT model, max(coalesce(time_end, time_begin)) FROM prediction p"
            f" WHERE job_id = :id AND time_begin IS NOT NULL{pruning} GROUP BY model"
        ),
        {"id": job_id, **params},
    )
    return {model: float(latest) for model, latest in rows if latest is not None}
