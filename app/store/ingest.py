"""Bulk load of one job's predictions: sources by INSERT, predictions by binary COPY, stats by one query.

Runs inside the caller's transaction, so a job's rows appear all at once or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.hume import predictions
from app.hume.predictions import EmotionScore, PredictionRow
from app.store.db import driver_connection


@dataclass(frozen=True)
class SourceRecord:
    kind: str
    url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    md5sum: str | None = None
    error: str | None = None
    file_errors: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


def source_records(
    sources: Sequence[predictions.SourceResult], *, default_url: str | None = None
) -> list[SourceRecord]:
    """What the source table keeps of each element of Hume's array: where it came from and what failed."""
    return [
        SourceRecord(
            kind=s.source.type,
            url=s.source.url or (default_url if s.source.type == "url" else None),
            filename=s.source.filename,
            content_type=s.source.content_type,
            md5sum=s.source.md5sum,
            error=s.error,
            file_errors=predictions.file_errors(s),
            files=predictions.source_files(s),
        )
        for s in sources
    ]


def error_count(records: Sequence[SourceRecord]) -> int:
    """Failed sources plus failed files inside sources: Hume's `num_errors`."""
    return sum(len(r.file_errors) + (1 if r.error else 0) for r in records)


_COPY = (
    "COPY prediction (job_id, source_id, file, model, group_id, frame, time_begin, time_end, prob, box,"
    " text, position_begin, position_end, confidence, speaker_confidence, scores, extras)"
    " FROM STDIN (FORMAT BINARY)"
)
_TYPES = [
    "uuid", "int8", "text", "text", "text", "int4", "float8", "float8", "float8", "float4[]",
    "text", "int4", "int4", "float8", "float8", "float4[]", "jsonb",
]  # fmt: skip

_STATS = text(
    """
    INSERT INTO emotion_stat (job_id, source_id, model, position, name, count, mean, max)
    SELECT p.job_id, p.source_id, p.model, (u.ord - 1)::smallint, e.name,
           count(u.score), avg(u.score), max(u.score)
    FROM prediction p
    CROSS JOIN LATERAL unnest(p.scores) WITH ORDINALITY AS u(score, ord)
    JOIN emotion e ON e.model = p.model AND e.position = u.ord - 1
    WHERE p.job_id = :job_id AND u.score IS NOT NULL
    GROUP BY p.job_id, p.source_id, p.model, u.ord, e.name
    """
)


def _identity(value: Any) -> Any:
    return value


class EmotionOrder:
    """Maps Hume's (name, score) lists to arrays in each model's canonical order.

    Real lists can come in any order, so scores are placed by name; a name we have never seen
    extends the model's order (stored in the emotion table) rather than being dropped.
    """

    def __init__(self, positions: dict[str, dict[str, int]]) -> None:
        self.positions = positions
        self.new_names: dict[str, list[str]] = {}
        self._plans: dict[tuple[str, tuple[str, ...]], tuple[int, list[int]]] = {}

    def place(self, model: str, scores: Sequence[EmotionScore]) -> list[float | None]:
        names = tuple(s.name for s in scores)
        plan = self._plans.get((model, names))
        if plan is None:
            plan = self._plan(model, names)
        width, slots = plan
        out: list[float | None] = [None] * width
        for slot, score in zip(slots, scores, strict=True):
            out[slot] = score.score
        return out

    def _plan(self, model: str, names: tuple[str, ...]) -> tuple[int, list[int]]:
        known = self.positions.setdefault(model, {})
        for name in names:
            if name not in known:
                known[name] = len(known)
                self.new_names.setdefault(model, []).append(name)
        plan = (len(known), [known[n] for n in names])
        self._plans[(model, names)] = plan
        return plan


async def load_emotion_order(session: AsyncSession) -> EmotionOrder:
    positions: dict[str, dict[str, int]] = {}
    rows = await session.execute(text("SELECT model, position, name FROM emotion ORDER BY model, position"))
    for model, position, name in rows:
        positions.setdefault(model, {})[name] = position
    return EmotionOrder(positions)


async def _save_new_emotions(session: AsyncSession, order: EmotionOrder) -> None:
    for model, names in order.new_names.items():
        # Serialize writers of one model's order; positions were chosen from what we read.
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('emotion:' || :m))"), {"m": model})
        for name in names:
            await session.execute(
                text("INSERT INTO emotion (model, position, name) VALUES (:m, :p, :n) ON CONFLICT DO NOTHING"),
                {"m": model, "p": order.positions[model][name], "n": name},
            )


async def insert_sources(session: AsyncSession, job_id: uuid.UUID, sources: Sequence[SourceRecord]) -> list[int]:
    ids: list[int] = []
    for position, s in enumerate(sources):
        result = await session.execute(
            text(
                "INSERT INTO source (job_id, position, kind, url, filename, content_type, md5sum, error,"
                " file_errors, files) VALUES (:job_id, :position, :kind, :url, :filename, :content_type,"
                " :md5sum, :error, CAST(:file_errors AS jsonb), CAST(:files AS jsonb)) RETURNING id"
            ),
            {
                "job_id": job_id,
                "position": position,
                "kind": s.kind,
                "url": s.url,
                "filename": s.filename,
                "content_type": s.content_type,
                "md5sum": s.md5sum,
                "error": s.error,
                "file_errors": orjson.dumps(s.file_errors).decode(),
                "files": orjson.dumps(s.files).decode(),
            },
        )
        ids.append(int(result.scalar_one()))
    return ids


async def ingest(
    session: AsyncSession,
    job_id: uuid.UUID,
    sources: Sequence[SourceRecord],
    rows: Iterable[PredictionRow],
) -> int:
    """Store a job's sources and predictions and its per-source emotion stats; returns the row count."""
    source_ids = await insert_sources(session, job_id, sources)
    order = await load_emotion_order(session)
    conn = await driver_connection(session)
    count = 0
    async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.set_types(_TYPES)
        for r in rows:
            await copy.write_row(
                (
                    job_id, source_ids[r.source_index], r.file, r.model, r.group_id, r.frame,
                    r.time_begin, r.time_end, r.prob, r.box, r.text, r.position_begin, r.position_end,
                    r.confidence, r.speaker_confidence, order.place(r.model, r.scores),
                    Jsonb(r.extras.decode(), dumps=_identity) if r.extras is not None else None,
                )
            )  # fmt: skip
            count += 1
    await _save_new_emotions(session, order)
    await session.execute(_STATS, {"job_id": job_id})
    return count
