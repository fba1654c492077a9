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
import uuid
from collections.abc import Callable, Iterable, Sequence
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


@dataclass(frozen=True)
class Batch:
    """One session's part of a flush: the measurements (by id) it received since its last flush (none: only its
    heartbeat is written), and how its rows are made (`rows(ids, source_index)`, in id order)."""

    job_id: uuid.UUID
    measured: Sequence[int]
    rows: Callable[[Sequence[int], int], Iterable[PredictionRow]]


async def append(
    session: AsyncSession,
    job_id: uuid.UUID,
    measured: Sequence[int],
    rows: Callable[[Sequence[int]], Iterable[PredictionRow]],
) -> int:
    """`append_many` for one session, with rows of source index 0."""
    (count,) = await append_many(session, [Batch(job_id, measured, lambda ids, _index: rows(ids))])
    return count


async def append_many(session: AsyncSession, batches: Sequence[Batch], order: EmotionOrder | None = None) -> list[int]:
    """Store each session's measurements (by id) not stored before, as its `rows` makes them, and fold them
    into its source's stats; count its job's predictions and beat its heart. All sessions together: one row
    lock statement, one COPY, one statement for stats, marks, heartbeats and counts. Ids only grow within a
    session (HUME-V1-FACTS §8: ids count from 0), so "not stored before" is "above the highest id stored";
    the row locks (taken in job id order) serialise two writers of one session. `order`: the emotion order,
    else read here. Returns the rows stored per batch (0 for a session that has no live_session row)."""
    jobs = [b.job_id for b in batches]
    if len(set(jobs)) != len(jobs):
        raise ValueError("a session appears twice in one flush")
    found = {
        job_id: (last_id, source_id)
        for job_id, last_id, source_id in await session.execute(_LOCK, {"jobs": sorted(jobs)})
    }
    present = [b for b in batches if b.job_id in found]
    counts = dict.fromkeys(jobs, 0)
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
        for k, b in enumerate(writing):
            counts[b.job_id] = sum(n for (index, _), n in stats.rows.items() if index == k)
        names = {model: order.names(model) for (_, model) in stats.rows}
    else:
        owners, sources, names = [], [], {}
    results = list(stats.results())
    rows_per_model = list(stats.rows.items())
    await session.execute(
        _FLUSHED,
        {"jobs": [owners[r[0]] for r in results], "sources": [sources[r[0]] for r in results],
         "models": [r[1] for r in results], "positions": [r[2] for r in results],
         "names": [names[r[1]][r[2]] for r in results], "counts": [r[3] for r in results],
         "means": [r[4] for r in results], "maxes": [r[5] for r in results],
         "row_jobs": [owners[k] for (k, _), _ in rows_per_model],
         "row_sources": [sources[k] for (k, _), _ in rows_per_model],
         "row_models": [model for (_, model), _ in rows_per_model], "row_counts": [n for _, n in rows_per_model],
         "live_jobs": [b.job_id for b in present],
         "last_ids": [new[b.job_id][-1] if new[b.job_id] else found[b.job_id][0] for b in present],
         "count_jobs": [b.job_id for b in writing], "job_counts": [counts[b.job_id] for b in writing]},
    )  # fmt: skip
    return [counts[j] for j in jobs]


_LOCK = text(
    "SELECT job_id, last_id, source_id FROM live_session WHERE job_id = ANY(CAST(:jobs AS uuid[]))"
    " ORDER BY job_id FOR UPDATE"
)

# One round trip for a flush's stats, whatever its width (arrays, not a row per emotion), its rows per model,
# each session's mark and heartbeat, and each job's count. A batch's stats are folded into what earlier batches
# stored (count-weighted mean, greatest max).
_FLUSHED = text("""
WITH emotions AS (
  INSERT INTO emotion_stat AS s (job_id, source_id, model, position, name, count, mean, max)
  SELECT u.job_id, u.source_id, u.model, u.position, u.name, u.count, u.mean, u.max
  FROM unnest(CAST(:jobs AS uuid[]), CAST(:sources AS bigint[]), CAST(:models AS text[]),
              CAST(:positions AS int[]), CAST(:names AS text[]), CAST(:counts AS bigint[]),
              CAST(:means AS float8[]), CAST(:maxes AS float8[]))
       AS u(job_id, source_id, model, position, name, count, mean, max)
  ON CONFLICT (job_id, source_id, model, position) DO UPDATE SET
    mean = (s.mean * s.count + EXCLUDED.mean * EXCLUDED.count) / (s.count + EXCLUDED.count),
    count = s.count + EXCLUDED.count,
    max = GREATEST(s.max, EXCLUDED.max)
), models AS (
  INSERT INTO model_stat AS m (job_id, source_id, model, predictions)
  SELECT u.job_id, u.source_id, u.model, u.n
  FROM unnest(CAST(:row_jobs AS uuid[]), CAST(:row_sources AS bigint[]), CAST(:row_models AS text[]),
              CAST(:row_counts AS bigint[])) AS u(job_id, source_id, model, n)
  ON CONFLICT (job_id, source_id, model) DO UPDATE SET predictions = m.predictions + EXCLUDED.predictions
), marked AS (
  UPDATE live_session AS l SET last_id = u.last_id, heartbeat_at = now()
  FROM unnest(CAST(:live_jobs AS uuid[]), CAST(:last_ids AS int[])) AS u(job_id, last_id)
  WHERE l.job_id = u.job_id
)
UPDATE job AS j SET num_predictions = j.num_predictions + u.n, updated_at = now()
FROM unnest(CAST(:count_jobs AS uuid[]), CAST(:job_counts AS bigint[])) AS u(id, n)
WHERE j.id = u.id
""")


async def beat(session: AsyncSession, job_id: uuid.UUID) -> None:
    await session.execute(update(LiveSession).where(LiveSession.job_id == job_id).values(heartbeat_at=func.now()))


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
