"""Bulk load of one job's predictions: sources by INSERT, predictions by binary COPY, and the per-source
emotion stats computed during that same pass (summaries and top-emotion queries read those, never the
predictions).

Runs inside the caller's transaction, so a job's rows appear all at once or not at all; the source
table's unique (job_id, position) makes a second load of the same job fail rather than duplicate.
"""

from __future__ import annotations

import itertools
import struct
import sys
import uuid
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.prediction_rows import EmotionScore, ListedScores, PredictionFormatError, PredictionRow
from app.store import pgbinary as pg
from app.store import prediction_partitions
from app.store.db import driver_connection
from app.store.emotion_order import EmotionOrder, Plan, load_emotion_order, lock_emotion_order, store_added


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


def error_count(records: Sequence[SourceRecord]) -> int:
    """Failed sources plus failed files inside sources: Hume's `num_errors`."""
    return sum(len(r.file_errors) + (1 if r.error else 0) for r in records)


# `tenant` routes each row to its tenant's partition (app/store/prediction_partitions.py); `stored_at` is the
# transaction's start, by default, so one transaction's rows land in one month.
_COPY = (
    "COPY prediction (job_id, tenant, source_id, file, model, group_id, frame, time_begin, time_end, prob, box,"
    " text, position_begin, position_end, confidence, speaker_confidence, scores, extras)"
    " FROM STDIN (FORMAT BINARY)"
)
_FIELDS = 18
_COPY_STATS = "COPY emotion_stat (job_id, source_id, model, position, name, count, mean, max) FROM STDIN"
_COPY_COUNTS = "COPY model_stat (job_id, source_id, model, predictions) FROM STDIN"
# Bytes handed to COPY at a time: large enough that per-call overhead vanishes, small enough to stay flat.
_CHUNK = 1 << 20


class StatsAccumulator:
    """count, mean and max per (source, model, position), gathered while rows stream to COPY.

    Complete rows (the normal case) keep only their packed float4 bytes, 4 bytes a score, and are
    reduced column by column at the end in C (`sum`/`max` over array slices); rows with gaps are
    folded in one by one. Stats are computed from the stored float4 values, as SQL over the table would.
    """

    def __init__(self) -> None:
        self.packed: dict[tuple[int, str, int], bytearray] = {}
        self.rows: dict[tuple[int, str], int] = {}
        self.folded: dict[tuple[int, str], _Columns] = {}
        self.listed: dict[tuple[int, str], tuple[array[int], bytearray]] = {}

    def add_packed(self, source: int, model: str, width: int, packed: bytes) -> None:
        key = (source, model, width)
        buffer = self.packed.get(key)
        if buffer is None:
            buffer = self.packed[key] = bytearray()
        buffer += packed

    def add_present(self, source: int, model: str, present: list[tuple[int, float]]) -> None:
        """A row's scored (position, value)s, folded at once (no per-row list kept)."""
        column = self.folded.get((source, model))
        if column is None:
            column = self.folded[(source, model)] = _Columns()
        for position, value in present:
            column.fold(position, 1, value, value)

    def add_listed(self, source: int, model: str, positions: Sequence[int], packed: bytes) -> None:
        """A row's scored positions with their `float4_values`, kept flat and folded at the end; counts the row."""
        key = (source, model)
        kept = self.listed.get(key)
        if kept is None:
            kept = self.listed[key] = (array("i"), bytearray())
        kept[0].extend(positions)
        kept[1].extend(packed)
        self.rows[key] = self.rows.get(key, 0) + 1

    def count(self, source: int, model: str) -> None:
        key = (source, model)
        self.rows[key] = self.rows.get(key, 0) + 1

    def results(self) -> Iterator[tuple[int, str, int, int, float, float]]:
        """(source, model, position, count, mean, max) for every scored position."""
        for source, model, position, n, total, peak in self.totals():
            yield source, model, position, n, total / n, peak

    def totals(self) -> Iterator[tuple[int, str, int, int, float, float]]:
        """(source, model, position, count, sum, max) for every scored position (read once)."""
        for source, model in self.rows:
            column = self.folded.get((source, model)) or _Columns()
            if (source, model) in self.listed:
                column.fold_listed(*self.listed[(source, model)])
            for (src, mdl, width), buffer in self.packed.items():
                if src == source and mdl == model and width:
                    values = array("f", bytes(buffer))
                    if sys.byteorder == "little":
                        values.byteswap()
                    for position in range(width):
                        scores = values[position::width]
                        column.fold(position, len(scores), sum(scores), max(scores))
            for position in sorted(column.count):
                yield source, model, position, column.count[position], column.total[position], column.peak[position]


class _Columns:
    def __init__(self) -> None:
        self.count: dict[int, int] = {}
        self.total: dict[int, float] = {}
        self.peak: dict[int, float] = {}

    def fold(self, position: int, n: int, total: float, peak: float) -> None:
        self.count[position] = self.count.get(position, 0) + n
        self.total[position] = self.total.get(position, 0.0) + total
        self.peak[position] = max(self.peak.get(position, peak), peak)

    def fold_listed(self, positions: array[int], packed: bytearray) -> None:
        """Fold values one by one in row order (the same sums as `fold` per value), over lists, not dicts."""
        values = array("f", bytes(packed))
        if sys.byteorder == "little":
            values.byteswap()
        width = max(positions, default=-1) + 1
        count = [0] * width
        total = [0.0] * width
        peak = [float("-inf")] * width
        for position, value in zip(positions, values, strict=True):
            count[position] += 1
            total[position] += value
            if value > peak[position]:
                peak[position] = value
        for position in range(width):
            if count[position]:
                self.fold(position, count[position], total[position], peak[position])


def _field_prefix(job_id: uuid.UUID, tenant: str, source_id: int, r: PredictionRow) -> bytes:
    return (
        pg.row_start(_FIELDS)
        + pg.uuid_(job_id)
        + pg.text(tenant)
        + pg.int8(source_id)
        + pg.text(r.file)
        + pg.text(r.model)
        + pg.text(r.group_id)
    )


def _encode_listed(r: PredictionRow, scores: ListedScores, slots: list[int], stats: StatsAccumulator) -> bytes:
    """`_encode` for a sparse API's listed scores: costs per listed name, whatever the model's width."""
    if not slots:
        stats.count(r.source_index, r.model)
        return _tail(r, _EMPTY)
    # Increasing positions, a name listed twice keeping its last score (as a JSON object would).
    placed = dict(zip(slots, scores.values, strict=True))
    positions = sorted(placed)
    packed = pg.float4_values(list(map(placed.__getitem__, positions)))
    stats.add_listed(r.source_index, r.model, positions, packed)
    return _tail(r, pg.float4_array_listed(positions[-1] + 1, positions, packed))


_EMPTY = pg.float4_array(b"")


def _encode(r: PredictionRow, row_scores: Sequence[EmotionScore], plan: Plan, stats: StatsAccumulator) -> bytes:
    """Everything after the (job, source, file, model, group) prefix, and the row's stats."""
    if plan.identity:
        packed = pg.float4_values([s.score for s in row_scores])
        scores = pg.float4_array(packed)
        stats.add_packed(r.source_index, r.model, plan.width, packed)
    else:
        if len(set(plan.slots)) == plan.width:
            placed: list[float] = [0.0] * plan.width
            for slot, score in zip(plan.slots, row_scores, strict=True):
                placed[slot] = score.score
            packed = pg.float4_values(placed)
            scores = pg.float4_array(packed)
            stats.add_packed(r.source_index, r.model, plan.width, packed)
        else:
            # Sparse (v1 lists only what it judged present): cost per scored name, not per array element.
            # A name listed twice keeps its last score, as a JSON object would.
            present = sorted({slot: score.score for slot, score in zip(plan.slots, row_scores, strict=True)}.items())
            scores = pg.float4_array_sparse(plan.width, present)
            # Round through float4 so the stats describe what is stored.
            stats.add_present(r.source_index, r.model, [(slot, array("f", [v])[0]) for slot, v in present])
    stats.count(r.source_index, r.model)
    return _tail(r, scores)


_NO_TEXT = pg.NULL * 5
"""text, position_begin, position_end, confidence and speaker_confidence all NULL: every audio/video row."""


def _tail(r: PredictionRow, scores: bytes) -> bytes:
    box = r.box
    if (
        r.text is None and r.position_begin is None and r.position_end is None and r.confidence is None
        and r.speaker_confidence is None
    ):  # fmt: skip
        text_fields = _NO_TEXT
    else:
        text_fields = b"".join(
            (pg.text(r.text), pg.int4(r.position_begin), pg.int4(r.position_end), pg.float8(r.confidence),
             pg.float8(r.speaker_confidence))
        )  # fmt: skip
    return b"".join(
        (
            pg.int4(r.frame), pg.float8(r.time_begin), pg.float8(r.time_end), pg.float8(r.prob),
            pg.NULL if box is None else pg.float4_array_of(box), text_fields, scores, pg.jsonb(r.extras),
        )
    )  # fmt: skip


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
    stats = StatsAccumulator()
    count = await copy_rows(session, job_id, source_ids, rows, order, stats)
    await store_added(session, order)
    await _write_stats(session, job_id, source_ids, order, stats)
    return count


async def copy_rows(
    session: AsyncSession,
    job_id: uuid.UUID,
    source_ids: Sequence[int],
    rows: Iterable[PredictionRow],
    order: EmotionOrder,
    stats: StatsAccumulator,
    *,
    jobs: Sequence[uuid.UUID] | None = None,
) -> int:
    """COPY `rows` of sources already stored (`source_ids[r.source_index]`, of `job_id` or, when given, of
    `jobs[r.source_index]`: live sessions' rows of many jobs go in one COPY), gathering their stats; names new
    to `order` are added to it (the caller stores them with `store_added`). Returns the row count."""
    owners = [job_id] if jobs is None else list(jobs)
    tenant_of = dict(zip(owners, await prediction_partitions.tenants_of(session, owners), strict=True))
    await prediction_partitions.ensure_for_session(session, tenant_of.values())
    conn = await driver_connection(session)
    prefixes: dict[tuple[int, str | None, str, str | None], bytes] = {}
    remaining: Iterator[PredictionRow] = iter(rows)
    count = 0
    try:
        while True:
            # One COPY until a row names an emotion we do not know; the model's order is then locked between
            # COPYs (no other statement can run on the connection while one is open), and loading resumes.
            stalled: PredictionRow | None = None
            async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                parts: list[bytes] = [pg.SIGNATURE]
                size = 0
                for r in remaining:
                    if isinstance(r.scores, ListedScores):
                        slots = order.slots(r.model, r.scores.names)
                        if slots is None:
                            stalled = r
                            break
                        data = _encode_listed(r, r.scores, slots, stats)
                    else:
                        plan = order.plan(r.model, r.scores)
                        if plan is None:
                            stalled = r
                            break
                        data = _encode(r, r.scores, plan, stats)
                    key = (r.source_index, r.file, r.model, r.group_id)
                    prefix = prefixes.get(key)
                    if prefix is None:
                        owner = job_id if jobs is None else jobs[r.source_index]
                        prefix = prefixes[key] = _field_prefix(owner, tenant_of[owner], source_ids[r.source_index], r)
                    parts.append(prefix)
                    parts.append(data)
                    size += len(prefix) + len(data)
                    count += 1
                    if size >= _CHUNK:
                        await copy.write(b"".join(parts))
                        parts.clear()
                        size = 0
                parts.append(pg.TRAILER)
                await copy.write(b"".join(parts))
            if stalled is None:
                break
            order.unknown(stalled.model, stalled.scores)  # names that are not text fail here
            await lock_emotion_order(session, order, stalled.model)
            remaining = itertools.chain([stalled], remaining)
    except (struct.error, OverflowError) as exc:
        # Only a malformed document gets here: a frame or position past int4, a score or box past float4, or
        # a listed score that is not a number (listed scores reach here as they were parsed).
        raise PredictionFormatError(f"a prediction holds a value out of range or not a number: {exc}") from None
    return count


async def _write_stats(
    session: AsyncSession, job_id: uuid.UUID, source_ids: Sequence[int], order: EmotionOrder, stats: StatsAccumulator
) -> None:
    names = {model: order.names(model) for (_, model) in stats.rows}
    conn = await driver_connection(session)
    async with conn.cursor() as cursor:
        async with cursor.copy(_COPY_STATS) as copy:
            for source, model, position, n, mean, peak in stats.results():
                await copy.write_row(
                    (job_id, source_ids[source], model, position, names[model][position], n, mean, peak)
                )
        async with cursor.copy(_COPY_COUNTS) as copy:
            for (source, model), n_rows in stats.rows.items():
                await copy.write_row((job_id, source_ids[source], model, n_rows))
