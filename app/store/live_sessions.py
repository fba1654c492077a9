"""Live sessions' rows: the single-use tokens browsers open them with, the session job with its one source,
and its measurements appended in batches as they arrive, each stored once.

Tokens are random 256-bit strings stored as their SHA-256 (as API keys are): a token is redeemed by one
UPDATE that also marks it used, so it opens one session, once, in whichever process the socket reaches,
and the key that minted it is checked again at that moment (revoked or without the `session` scope: refused).
"""

from __future__ import annotations

import hashlib
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
from app.store.emotion_order import load_emotion_order, store_added
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


async def append(
    session: AsyncSession,
    job_id: uuid.UUID,
    measured: Sequence[int],
    rows: Callable[[Sequence[int]], Iterable[PredictionRow]],
) -> int:
    """Store the measurements (by id) not stored before, as `rows` makes them into prediction rows of
    source 0, and fold them into the source's stats; counts the job's predictions and beats its heart.
    Ids only grow within a session (the caller's reason), so "not stored before" is "above the highest id
    stored"; the row lock on live_session serialises two writers of one session. Returns the rows stored."""
    live = (
        await session.execute(
            select(LiveSession.last_id, LiveSession.source_id).where(LiveSession.job_id == job_id).with_for_update()
        )
    ).first()
    if live is None:
        return 0
    last_id, source_id = live
    ordered = sorted({i for i in measured if i > last_id})
    count = 0
    if ordered:
        order = await load_emotion_order(session)
        stats = ingest.StatsAccumulator()
        count = await ingest.copy_rows(session, job_id, [source_id], rows(ordered), order, stats)
        await store_added(session, order)
        await _merge_stats(session, job_id, source_id, order.names, stats)
        last_id = ordered[-1]
    await session.execute(_ADVANCE, {"job_id": job_id, "last_id": last_id, "count": count})
    return count


# The session's mark and heartbeat, and the job's count when rows were stored: one round trip.
_ADVANCE = text("""
WITH marked AS (UPDATE live_session SET last_id = :last_id, heartbeat_at = now() WHERE job_id = :job_id)
UPDATE job SET num_predictions = num_predictions + :count, updated_at = now() WHERE id = :job_id AND :count > 0
""")


# One round trip for a batch's stats, whatever its width (arrays, not a row per emotion), and its rows per model.
_MERGE_STATS = text("""
WITH emotions AS (
  INSERT INTO emotion_stat AS s (job_id, source_id, model, position, name, count, mean, max)
  SELECT :job_id, :source_id, u.model, u.position, u.name, u.count, u.mean, u.max
  FROM unnest(CAST(:models AS text[]), CAST(:positions AS int[]), CAST(:names AS text[]), CAST(:counts AS bigint[]),
              CAST(:means AS float8[]), CAST(:maxes AS float8[])) AS u(model, position, name, count, mean, max)
  ON CONFLICT (job_id, source_id, model, position) DO UPDATE SET
    mean = (s.mean * s.count + EXCLUDED.mean * EXCLUDED.count) / (s.count + EXCLUDED.count),
    count = s.count + EXCLUDED.count,
    max = GREATEST(s.max, EXCLUDED.max)
)
INSERT INTO model_stat AS m (job_id, source_id, model, predictions)
SELECT :job_id, :source_id, u.model, u.n
FROM unnest(CAST(:row_models AS text[]), CAST(:row_counts AS bigint[])) AS u(model, n)
ON CONFLICT (job_id, source_id, model) DO UPDATE SET predictions = m.predictions + EXCLUDED.predictions
""")


async def _merge_stats(
    session: AsyncSession,
    job_id: uuid.UUID,
    source_id: int,
    names: Callable[[str], Sequence[str]],
    stats: ingest.StatsAccumulator,
) -> None:
    """A batch's stats folded into what earlier batches stored (count-weighted mean, greatest max)."""
    listed = {model: names(model) for (_, model) in stats.rows}
    results = list(stats.results())
    rows = list(stats.rows.items())
    await session.execute(
        _MERGE_STATS,
        {"job_id": job_id, "source_id": source_id, "models": [r[1] for r in results],
         "positions": [r[2] for r in results], "names": [listed[r[1]][r[2]] for r in results],
         "counts": [r[3] for r in results], "means": [r[4] for r in results], "maxes": [r[5] for r in results],
         "row_models": [model for (_, model), _ in rows], "row_counts": [n for _, n in rows]},
    )  # fmt: skip


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
