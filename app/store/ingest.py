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


def error_count(records: Sequence[SourceRecord]) -> int:
    """Failed sources plus failed files inside sources: Hume's `num_errors`."""
    return sum(len(r.file_errors) + (1 if r.error else 0) for r in records)


_COPY = (
    "COPY prediction (job_id, source_id, file, model, group_id, frame, time_begin, time_end, prob, box,"
    " text, position_begin, position_end, confidence, speaker_confidence, scores, extras)"
    " FROM STDIN (FORMAT BINARY)"
)
_FIELDS = 17
_COPY_STATS = "COPY emotion_stat (job_id, source_id, model, position, name, count, mean, max) FROM STDIN"
_COPY_COUNTS = "COPY model_stat (job_id, source_id, model, predictions) FROM STDIN"
# Bytes handed to COPY at a time: large enough that per-call overhead vanishes, small enough to stay flat.
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Plan:
    """Where each of a score list's entries goes in the model's array."""

    width: int
    slots: tuple[int, ...]
    identity: bool
    """Scores arrive in canonical order with nothing missing: copied as they are."""


class EmotionOrder:
    """Maps Hume's (name, score) lists to arrays in each model's canonical order.

    Real lists can come in any order, so scores are placed by name; a name we have never seen
    extends the model's order (stored in the emotion table) rather than being dropped. An array is
    as long as the highest position it fills: positions after it are simply not scored.
    """

    def __init__(self, positions: dict[str, dict[str, int]]) -> None:
        self.positions = positions
        self._plans: dict[tuple[str, tuple[str, ...]], Plan] = {}
        self.locked: set[str] = set()
        """Models whose order this transaction holds the lock of: new names get positions in memory."""
        self.added: dict[str, list[str]] = {}
        """Names given positions in memory, to be inserted before the transaction ends (`store_added`)."""
        self._next: dict[str, int] = {}

    def lock(self, model: str, stored: dict[str, int]) -> None:
        """The model's order as stored, read under its lock: new names go after the last position."""
        known = self.positions.setdefault(model, {})
        known.update(stored)
        self._next[model] = max(known.values(), default=-1) + 1
        self.locked.add(model)

    def admit(self, model: str, names: Sequence[str]) -> bool:
        """Give the names not in a locked model's order the next positions; False if the model is not locked."""
        if model not in self.locked:
            return False
        if not all(isinstance(n, str) for n in names):
            raise PredictionFormatError(f"emotion names of {model} that are not text: {list(names)[:3]!r}")
        known = self.positions.setdefault(model, {})
        added = self.added.setdefault(model, [])
        for name in names:
            if name not in known:
                known[name] = self._next[model]
                self._next[model] += 1
                added.append(name)
        return True

    def names(self, model: str) -> list[str]:
        known = self.positions.get(model, {})
        ordered = [""] * (max(known.values(), default=-1) + 1)
        for name, position in known.items():
            ordered[position] = name
        return ordered

    def unknown(self, model: str, scores: Sequence[EmotionScore]) -> list[str]:
        known = self.positions.get(model, {})
        names = scores.names if isinstance(scores, ListedScores) else [s.name for s in scores]
        if not all(isinstance(n, str) for n in names):
            raise PredictionFormatError(f"emotion names of {model} that are not text: {names[:3]!r}")
        return list(dict.fromkeys(n for n in names if n not in known))

    def slots(self, model: str, names: Sequence[str]) -> list[int] | None:
        """Positions of listed names, or None when one is not in the order yet. Not cached like `plan`:
        a sparse API's name sets are nearly all different, so a cache would only grow."""
        try:
            known = self.positions[model]
            return [known[n] for n in names]
        except KeyError:
            if self.admit(model, names):
                return [self.positions[model][n] for n in names]
            return None
        except TypeError:
            return None

    def plan(self, model: str, scores: Sequence[EmotionScore]) -> Plan | None:
        """The placement for this list of names, or None when a name is not in the order yet."""
        names = tuple(s.name for s in scores)
        key = (model, names)
        plan = self._plans.get(key)
        if plan is None:
            known = self.positions.get(model, {})
            if any(n not in known for n in names):
                if not self.admit(model, names):
                    return None
                known = self.positions[model]
            slots = tuple(known[n] for n in names)
            width = max(slots, default=-1) + 1
            # A name listed twice keeps its last score, as a JSON object would.
            plan = Plan(width, slots, slots == tuple(range(width)))
            self._plans[key] = plan
        return plan

    def place(self, model: str, scores: Sequence[EmotionScore]) -> list[float | None]:
        """Scores in canonical positions (None where this list has no score); every name must be known."""
        plan = self.plan(model, scores)
        if plan is None:
            raise KeyError(f"unknown emotion names for {model}: {self.unknown(model, scores)}")
        out: list[float | None] = [None] * plan.width
        for slot, score in zip(plan.slots, scores, strict=True):
            out[slot] = score.score
        return out


async def load_emotion_order(session: AsyncSession) -> EmotionOrder:
    positions: dict[str, dict[str, int]] = {}
    rows = await session.execute(text("SELECT model, position, name FROM emotion ORDER BY model, position"))
    for model, position, name in rows:
        positions.setdefault(model, {})[name] = position
    return EmotionOrder(positions)


async def lock_emotion_order(session: AsyncSession, order: EmotionOrder, model: str) -> None:
    """Take a model's order for the rest of the transaction, re-read under the lock, so that two jobs meeting
    the same new name agree on its position; from then on new names are placed in memory (`admit`)
    and inserted by `store_added` in one statement, so a load stops its COPY at most once per model."""
    if model in order.locked:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('emotion:' || :m))"), {"m": model})
    rows = await session.execute(text("SELECT name, position FROM emotion WHERE model = :m"), {"m": model})
    order.lock(model, {name: int(position) for name, position in rows})


async def store_added(session: AsyncSession, order: EmotionOrder) -> None:
    for model, added in order.added.items():
        if added:
            known = order.positions[model]
            await session.execute(
                text(
                    "INSERT INTO emotion (model, position, name)"
                    " SELECT :m, p, n FROM unnest(CAST(:ps AS smallint[]), CAST(:ns AS text[])) AS t(p, n)"
                ),
                {"m": model, "ps": [known[n] for n in added], "ns": added},
            )
        added.clear()


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
                n = column.count[position]
                yield source, model, position, n, column.total[position] / n, column.peak[position]


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


def _field_prefix(job_id: uuid.UUID, source_id: int, r: PredictionRow) -> bytes:
    return (
        pg.row_start(_FIELDS)
        + pg.uuid_(job_id)
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
    conn = await driver_connection(session)
    stats = StatsAccumulator()
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
                        prefix = prefixes[key] = _field_prefix(job_id, source_ids[r.source_index], r)
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
    await store_added(session, order)
    await _write_stats(session, job_id, source_ids, order, stats)
    return count


async def _write_stats(
    session: AsyncSession, job_id: uuid.UUID, source_ids: list[int], order: EmotionOrder, stats: StatsAccumulator
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
