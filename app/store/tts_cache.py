"""The TTS cache table: lookups, uses counted in batches, inserts that evict least-recently-used entries to fit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.tables import TtsCacheEntry

# Serializes evictions across processes so two of them never both delete to make the same room.
_EVICT_LOCK = 0x7454_5343  # "tTSC"


@dataclass(frozen=True)
class Cached:
    content: bytes
    content_type: str


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    hits: int
    oldest_used_at: datetime | None
    newest_used_at: datetime | None


_READ = select(TtsCacheEntry.content, TtsCacheEntry.content_type).where(TtsCacheEntry.key == bindparam("key"))


async def peek(session: AsyncSession, key: str) -> Cached | None:
    """The entry for `key`, or None; counts nothing (a hit's use is written by `count_uses`, in batches)."""
    row = (await session.execute(_READ, {"key": key})).first()
    return None if row is None else Cached(content=row.content, content_type=row.content_type)


_COUNT_USES = text(
    """
    UPDATE tts_cache AS entry SET hits = entry.hits + used.n, last_used_at = now()
    FROM unnest(CAST(:keys AS text[]), CAST(:counts AS int[])) AS used(key, n)
    WHERE entry.key = used.key
    """
)


async def count_uses(session: AsyncSession, uses: Mapping[str, int]) -> None:
    """Add hits and refresh the LRU position of the entries used, in one statement."""
    # Hit counts and LRU times are bookkeeping: losing the last few on a crash is fine, and not waiting
    # for the WAL flush keeps the writer quick.
    await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    await session.execute(_COUNT_USES, {"keys": list(uses), "counts": list(uses.values())})


async def put(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    content: bytes,
    content_type: str,
    request: dict[str, Any],
    generation_id: str | None,
    max_bytes: int,
) -> int:
    """Store an entry (a concurrent writer's copy of the same key wins), then evict to fit; returns
    how many entries were evicted. An entry larger than the whole cache is not stored."""
    if len(content) > max_bytes:
        return 0
    await session.execute(
        insert(TtsCacheEntry)
        .values(
            key=key,
            kind=kind,
            content=content,
            content_type=content_type,
            size_bytes=len(content),
            request=request,
            generation_id=generation_id,
        )
        .on_conflict_do_nothing(index_elements=[TtsCacheEntry.key])
    )
    return await evict(session, max_bytes)


async def evict(session: AsyncSession, max_bytes: int) -> int:
    """Delete least-recently-used entries until the total size is at most `max_bytes`."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _EVICT_LOCK})
    # Keep the most recently used entries whose running total fits; everything older goes.
    result = await session.execute(
        text(
            """
            DELETE FROM tts_cache WHERE key IN (
                SELECT key FROM (
                    SELECT key, sum(size_bytes) OVER (ORDER BY last_used_at DESC, key) AS running
                    FROM tts_cache
                ) ranked
                WHERE running > :max_bytes
            )
            """
        ),
        {"max_bytes": max_bytes},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def stats(session: AsyncSession) -> CacheStats:
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(TtsCacheEntry.size_bytes), 0),
                func.coalesce(func.sum(TtsCacheEntry.hits), 0),
                func.min(TtsCacheEntry.last_used_at),
                func.max(TtsCacheEntry.last_used_at),
            )
        )
    ).one()
    return CacheStats(
        entries=int(row[0]),
        bytes=int(row[1]),
        hits=int(row[2]),
        oldest_used_at=row[3],
        newest_used_at=row[4],
    )


async def clear(session: AsyncSession) -> int:
    result = await session.execute(text("DELETE FROM tts_cache"))
    return int(getattr(result, "rowcount", 0) or 0)
