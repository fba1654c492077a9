"""Live sessions' rows: the single-use tokens browsers open them with, the session job with its one source,
and its measurements appended in batches as they arrive, each stored once.

Tokens are random 256-bit strings stored as their SHA-256 (as API keys are): a token is redeemed by one
UPDATE that also marks it used, so it opens one session, once, in whichever process the socket reaches,
and the key that minted it is checked again at that moment (revoked or without the `session` scope: refused).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import sys
import uuid
from array import array
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.job_status import JobStatus
from app.core.prediction_rows import PredictionRow
from app.store import ingest
from app.store.emotion_order import EmotionOrder, load_emotion_order, store_added
from app.store.tables import ApiKey, Job, LiveSession, SessionToken

TOKEN_PREFIX = "hst_"  # noqa: S105 (a prefix that names what the secret is, not a secret)
KIND = "session"
BACKEND = "v1"
"""Sessions measure through Hume's Expression Measurement v1 (realtime), as v1 jobs do."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def mint(
    session: AsyncSession,
    *,
    api_key_id: uuid.UUID,
    tenant: str,
    job_id: uuid.UUID,
    metadata: dict[str, Any],
    ttl_s: int,
) -> tuple[str, datetime]:
    """A new token (in clear text: the only time it exists here) and when it stops opening sessions. Tokens
    expired over an hour ago are deleted on the way (the index on expires_at keeps that cheap)."""
    await session.execute(text("DELETE FROM session_token WHERE expires_at < now() - interval '1 hour'"))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    values = {"hash": hash_token(token), "key": api_key_id, "tenant": tenant, "job_id": job_id, "ttl": ttl_s,
              "metadata": _json(metadata)}  # fmt: skip
    expires_at = (
        await session.execute(
            text(
                "INSERT INTO session_token (token_hash, api_key_id, tenant, job_id, metadata, expires_at) VALUES"
                " (:hash, :key, :tenant, :job_id, CAST(:metadata AS jsonb), now() + make_interval(secs => :ttl))"
                " RETURNING expires_at"
            ),
            values,
        )
    ).scalar_one()
    return token, expires_at


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Redeemed:
    api_key_id: uuid.UUID
    tenant: str
    job_id: uuid.UUID
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    reason: str
    """unknown, used, expired, revoked or scope."""


async def redeem(session: AsyncSession, token: str, *, scope: str) -> Redeemed | Refused:
    """Use the token once: its key's tenant and metadata, or why it opens nothing."""
    token_hash = hash_token(token)
    used = (
        await session.execute(
            update(SessionToken)
            .where(
                SessionToken.token_hash == token_hash,
                SessionToken.used_at.is_(None),
                SessionToken.expires_at > func.now(),
            )
            .values(used_at=func.now())
            .returning(SessionToken.api_key_id, SessionToken.tenant, SessionToken.token_metadata, SessionToken.job_id)
        )
    ).first()
    if used is None:
        row = (
            await session.execute(
                select(SessionToken.used_at, SessionToken.expires_at < func.now()).where(
                    SessionToken.token_hash == token_hash
                )
            )
        ).first()
        if row is None:
            return Refused("unknown")
        return Refused("used" if row[0] is not None else "expired")
    key = (
        await session.execute(select(ApiKey.scopes, ApiKey.revoked_at, ApiKey.tenant).where(ApiKey.id == used[0]))
    ).first()
    if key is None or key.revoked_at is not None:
        return Refused("revoked")
    if scope not in key.scopes or key.tenant != used[1]:
        return Refused("scope")
    return Redeemed(api_key_id=used[0], tenant=used[1], job_id=used[3], metadata=dict(used[2] or {}))


async def start(
    session: AsyncSession, *, redeemed: Redeemed, medium: str, request: dict[str, Any]
) -> tuple[uuid.UUID, int]:
    """The session's job (`live`, with the id its token named), its one source and its live_session row;
    (job id, source id)."""
    job_id = redeemed.job_id
    session.add(
        Job(id=job_id, kind=KIND, backend=BACKEND, tenant=redeemed.tenant, status=JobStatus.LIVE.value,
            api_key_id=redeemed.api_key_id, job_metadata=redeemed.metadata, request=request,
            started_at=func.now(), submitted_at=func.now())
    )  # fmt: skip
    await session.flush()
    (source_id,) = await ingest.insert_sources(
        session, job_id, [ingest.SourceRecord(kind="session", filename=f"{medium} session", content_type=medium)]
    )
    session.add(LiveSession(job_id=job_id, medium=medium, source_id=source_id))
    await session.flush()
    return job_id, source_id


async def set_hume_session(session: AsyncSession, job_id: uuid.UUID, hume_session_id: str) -> None:
    """Hume's session id is its run id (HUME-V1-FACTS §8): kept as the job's Hume id for the runs API."""
    await session.execute(
        update(Job).where(Job.id == job_id).values(hume_job_id=hume_session_id, updated_at=func.now())
    )
    await session.execute(
        update(LiveSession).where(LiveSession.job_id == job_id).values(hume_session_id=hume_session_id)
    )


@dataclass(slots=True)
class Batch:
    """One session's part of a flush: the measurements (by id) it received since its last flush (none: only its
    heartbeat is written), how its rows are made (`rows(ids, source_index)`, in id order), and its row as the
    writer's last committed flush left it (highest id stored, source id), None when not known: read then."""

    job_id: uuid.UUID
    measured: Sequence[int]
    rows: Callable[[Sequence[int], int], Iterable[PredictionRow]]
    known: tuple[int, int] | None = None


@dataclass(slots=True)
class Appended:
    """What a flush stored of one session: its rows, its highest id stored before and now, its source, and
    the rows' scores as they were stored, to be added up (`SessionStats`)."""

    job_id: uuid.UUID
    count: int
    before: int
    last_id: int
    source_id: int
    rows: dict[str, int]
    """Rows per model."""
    listed: dict[str, tuple[array[int], bytearray]]
    """Per model, every stored score's position and its float4 (big-endian), in row order."""
    scored: list[tuple[str, int, int, float, float]]
    """(model, position, count, sum, max) of scores that did not come as lists (none from Hume's v1)."""


class Conflict(Exception):
    """A session's row was not as its writer knew it (another writer, or a commit whose outcome was lost):
    the flush is rolled back and the rows are read again."""


class _Column:
    """One model's count, sum and max per position, in flat arrays (~10 KB for a 415-name vocabulary)."""

    __slots__ = ("count", "dirty", "peak", "total")

    def __init__(self) -> None:
        self.count = array("q")
        self.total = array("d")
        self.peak = array("d")
        self.dirty: set[int] = set()

    def copy(self) -> _Column:
        out = _Column()
        out.count, out.total, out.peak = array("q", self.count), array("d", self.total), array("d", self.peak)
        out.dirty = set(self.dirty)
        return out

    def _grow(self, width: int) -> None:
        if width > len(self.count):
            grow = width - len(self.count)
            self.count.extend([0] * grow)
            self.total.extend([0.0] * grow)
            self.peak.extend([float("-inf")] * grow)

    def fold(self, position: int, n: int, total: float, peak: float) -> None:
        self._grow(position + 1)
        self.count[position] += n
        self.total[position] += total
        self.peak[position] = max(self.peak[position], peak)
        self.dirty.add(position)

    def fold_listed(self, positions: array[int], packed: bytes | bytearray) -> None:
        """Scores one by one in row order: the sums the upload's StatsAccumulator makes of the same rows."""
        values = array("f", packed)
        if sys.byteorder == "little":
            values.byteswap()
        self._grow(max(positions, default=-1) + 1)
        count, total, peak = self.count, self.total, self.peak
        for position, value in zip(positions, values, strict=True):
            count[position] += 1
            total[position] += value
            if value > peak[position]:
                peak[position] = value
        self.dirty.update(positions)


class SessionStats:
    """A live session's stats: what its stored rows add up to (rows per model; count, sum and max per model
    and position), kept by the process flushing it and written whole (`advance`) with its end, as an
    upload's are written with its rows: a score's stats row rewritten as measurements come costs ~35-50 us of
    Postgres CPU a write (emotion_stat's rows carry two indexes and two foreign keys), 17 writes a measurement
    flushed each tick (11x an upload's whole cost, bench live_ingest), ~2 a measurement written every 10
    minutes (an audio session's 200 measurements touch nearly all its 415 positions), against ~0.35 for an hour
    written once. Flushes' scores are kept as stored (8 bytes each) and added up every 4,096 (32 KiB)."""

    _KEPT_MAX = 4096

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.columns: dict[str, _Column] = {}
        self.changed: set[str] = set()
        """Models with rows stored since the stats were last written."""
        self._listed: dict[str, tuple[array[int], bytearray]] = {}
        self._kept = 0

    def fold(self, appended: Appended) -> None:
        for model, n in appended.rows.items():
            self.rows[model] = self.rows.get(model, 0) + n
            self.changed.add(model)
        for model, (positions, packed) in appended.listed.items():
            kept = self._listed.get(model)
            if kept is None:
                kept = self._listed[model] = (array("i"), bytearray())
            kept[0].extend(positions)
            kept[1].extend(packed)
            self._kept += len(positions)
        for model, position, n, total, peak in appended.scored:
            self._column(model).fold(position, n, total, peak)
        if self._kept > self._KEPT_MAX:
            self.add_up()

    def _column(self, model: str) -> _Column:
        column = self.columns.get(model)
        if column is None:
            column = self.columns[model] = _Column()
        return column

    def plus(self, appended: Appended) -> SessionStats:
        """A copy with `appended` folded in and added up (this one unchanged until the flush writing the copy
        commits)."""
        out = SessionStats()
        out.rows = dict(self.rows)
        out.changed = set(self.changed)
        out.columns = {model: column.copy() for model, column in self.columns.items()}
        out._listed = {model: (array("i", p), bytearray(v)) for model, (p, v) in self._listed.items()}
        out.fold(appended)
        out.add_up()
        return out

    def add_up(self) -> None:
        for model, (positions, packed) in self._listed.items():
            self._column(model).fold_listed(positions, packed)
        self._listed.clear()
        self._kept = 0

    def written(self) -> None:
        """Its values were stored (by a transaction that committed)."""
        self.changed.clear()
        for column in self.columns.values():
            column.dirty.clear()


async def append_many(
    session: AsyncSession, batches: Sequence[Batch], order: EmotionOrder | None = None
) -> list[Appended]:
    """Store each session's measurements (by id) not stored before, as its `rows` makes them, all sessions'
    rows in one COPY. Ids only grow within a session (HUME-V1-FACTS §8: ids count from 0), so "not stored
    before" is "above the highest id stored": as the writer knows it (`Batch.known`, checked by `advance`,
    which must follow in the same transaction), else read under the row's lock (sessions in job id order).
    `order`: the emotion order, else read here. Returns what was stored per session with a live_session row."""
    jobs = [b.job_id for b in batches]
    if len(set(jobs)) != len(jobs):
        raise ValueError("a session appears twice in one flush")
    found = {b.job_id: b.known for b in batches if b.known is not None}
    unknown = sorted(b.job_id for b in batches if b.known is None)
    if unknown:
        for job_id, last_id, source_id in await session.execute(_LOCK, {"jobs": _uuid_array(unknown)}):
            found[job_id] = (last_id, source_id)
    present = [b for b in batches if b.job_id in found]
    new = {b.job_id: sorted({i for i in b.measured if i > found[b.job_id][0]}) for b in present}
    writing = [b for b in present if new[b.job_id]]
    stats = ingest.StatsAccumulator()
    if writing:
        if order is None:
            order = await load_emotion_order(session)
        owners = [b.job_id for b in writing]
        sources = [found[b.job_id][1] for b in writing]
        rows = itertools.chain.from_iterable(b.rows(new[b.job_id], k) for k, b in enumerate(writing))
        await ingest.copy_rows(session, owners[0], sources, rows, order, stats, jobs=owners)
        await store_added(session, order)
    index = {b.job_id: k for k, b in enumerate(writing)}
    per_model: dict[int, dict[str, int]] = {}
    for (k, model), n in stats.rows.items():
        per_model.setdefault(k, {})[model] = n
    listed: dict[int, dict[str, tuple[array[int], bytearray]]] = {}
    for (k, model), kept in stats.listed.items():
        listed.setdefault(k, {})[model] = kept
    stats.listed.clear()  # what is left to add up came otherwise than as lists
    scored: dict[int, list[tuple[str, int, int, float, float]]] = {}
    for k, model, position, n, total, peak in stats.totals():
        scored.setdefault(k, []).append((model, position, n, total, peak))
    out = []
    for b in present:
        k = index.get(b.job_id, -1)
        before, source_id = found[b.job_id]
        ids = new[b.job_id]
        models = per_model.get(k, {})
        out.append(
            Appended(b.job_id, sum(models.values()), before, ids[-1] if ids else before, source_id, models,
                     listed.get(k, {}), scored.get(k, []))
        )  # fmt: skip
    return out


async def advance(
    session: AsyncSession,
    appended: Sequence[Appended],
    totals: dict[uuid.UUID, SessionStats],
    beats: Collection[uuid.UUID] = (),
) -> None:
    """In one statement: each session's mark (highest id stored, from the one it was before: else Conflict),
    the heartbeat of those in `beats`, each job's count, and the stats of the sessions in `totals` (their
    changed positions, added up, absolute values: writing them twice is harmless)."""
    emotions: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    for job_id, stats in totals.items():
        for model, column in stats.columns.items():
            for p in column.dirty:
                n = column.count[p]
                emotions.append({"j": job_id, "m": model, "p": p, "c": n, "a": column.total[p] / n,
                                 "x": column.peak[p]})  # fmt: skip
        models.extend({"j": job_id, "m": model, "n": stats.rows[model]} for model in stats.changed)
    marks = [{"j": a.job_id, "b": a.before, "l": a.last_id, "n": a.count, "h": a.job_id in beats} for a in appended]
    # JSON, not parameter arrays: psycopg dumps a list element by element in Python (45% of a 200-session
    # tick's CPU, py-spy), orjson and Postgres's jsonb parser do it in C.
    marked = (
        await session.execute(_ADVANCE, {"marks": _json(marks), "emotions": _json(emotions), "models": _json(models)})
    ).scalar_one()
    if marked != len(marks):
        raise Conflict(f"{len(marks) - marked} of {len(marks)} sessions were not as their writer knew them")


def _uuid_array(values: Sequence[uuid.UUID]) -> str:
    """A uuid[] literal (a uuid needs no quoting in one)."""
    return "{" + ",".join(map(str, values)) + "}"


_LOCK = text(
    "SELECT job_id, last_id, source_id FROM live_session WHERE job_id = ANY(CAST(:jobs AS uuid[]))"
    " ORDER BY job_id FOR UPDATE"
)

# Each session's mark moves from the highest id its writer knew to the one now stored (a row not as it was
# known is not updated, and the caller rolls back); a second writer of one session waits on the row's lock
# and then finds the mark moved. The heartbeat only when due: heartbeat_at is indexed, so writing it makes a
# new index entry, where an update of last_id alone stays on its page (HOT). Stats as absolute values.
_ADVANCE = text("""
WITH marks AS (
  SELECT * FROM jsonb_to_recordset(CAST(:marks AS jsonb)) AS u(j uuid, b int, l int, n bigint, h boolean)
), marked AS (
  UPDATE live_session AS l SET last_id = u.l, heartbeat_at = CASE WHEN u.h THEN now() ELSE l.heartbeat_at END
  FROM marks u
  WHERE l.job_id = u.j AND l.last_id = u.b
  RETURNING l.job_id
), emotions AS (
  INSERT INTO emotion_stat AS s (job_id, source_id, model, position, name, count, mean, max)
  SELECT u.j, l.source_id, u.m, u.p, e.name, u.c, u.a, u.x
  FROM jsonb_to_recordset(CAST(:emotions AS jsonb)) AS u(j uuid, m text, p int, c bigint, a float8, x float8)
  JOIN live_session l ON l.job_id = u.j JOIN emotion e ON e.model = u.m AND e.position = u.p
  ON CONFLICT (job_id, source_id, model, position) DO UPDATE
    SET count = EXCLUDED.count, mean = EXCLUDED.mean, max = EXCLUDED.max
), models AS (
  INSERT INTO model_stat AS m (job_id, source_id, model, predictions)
  SELECT u.j, l.source_id, u.m, u.n
  FROM jsonb_to_recordset(CAST(:models AS jsonb)) AS u(j uuid, m text, n bigint) JOIN live_session l ON l.job_id = u.j
  ON CONFLICT (job_id, source_id, model) DO UPDATE SET predictions = EXCLUDED.predictions
), counted AS (
  UPDATE job AS j SET num_predictions = j.num_predictions + u.n, updated_at = now()
  FROM marks u WHERE j.id = u.j AND u.n > 0
)
SELECT count(*) FROM marked
""")


async def restat(session: AsyncSession, job_id: uuid.UUID) -> None:
    """A live session's stats made again from its stored rows: for a session whose process ended before
    writing them (its stats were kept in that process's memory, see SessionStats)."""
    await session.execute(_RESTAT, {"job_id": job_id})


_RESTAT = text("""
WITH scored AS (
  SELECT p.source_id, p.model, s.ord - 1 AS position, s.v::float8 AS v
  FROM prediction p CROSS JOIN LATERAL unnest(p.scores) WITH ORDINALITY AS s(v, ord)
  WHERE p.job_id = CAST(:job_id AS uuid) AND s.v IS NOT NULL
), emotions AS (
  INSERT INTO emotion_stat AS st (job_id, source_id, model, position, name, count, mean, max)
  SELECT CAST(:job_id AS uuid), g.source_id, g.model, g.position, e.name, g.n, g.mean, g.peak
  FROM (SELECT source_id, model, position, count(*) AS n, avg(v) AS mean, max(v) AS peak
        FROM scored GROUP BY source_id, model, position) AS g
  JOIN emotion e ON e.model = g.model AND e.position = g.position
  ON CONFLICT (job_id, source_id, model, position) DO UPDATE
    SET count = EXCLUDED.count, mean = EXCLUDED.mean, max = EXCLUDED.max
)
INSERT INTO model_stat AS m (job_id, source_id, model, predictions)
SELECT CAST(:job_id AS uuid), source_id, model, count(*) FROM prediction WHERE job_id = CAST(:job_id AS uuid)
GROUP BY source_id, model
ON CONFLICT (job_id, source_id, model) DO UPDATE SET predictions = EXCLUDED.predictions
""")


async def abandoned(session: AsyncSession, *, older_than_s: float, limit: int = 100) -> list[uuid.UUID]:
    """Live session jobs whose relay wrote no heartbeat for `older_than_s`: its process is gone."""
    query = (
        select(Job.id)
        .join(LiveSession, LiveSession.job_id == Job.id)
        .where(
            Job.kind == KIND,
            Job.status == JobStatus.LIVE.value,
            LiveSession.heartbeat_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s),
        )
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())
