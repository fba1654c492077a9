"""The TTS cache table against real Postgres: hits counted in batches, LRU eviction under a size bound, races
on one key."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.store import tts_cache


async def put(
    sessionmaker: async_sessionmaker[AsyncSession], key: str, size: int, max_bytes: int = 10_000, fill: bytes = b"x"
) -> int:
    async with sessionmaker.begin() as session:
        return await tts_cache.put(
            session,
            key=key,
            kind="audio",
            content=fill * size,
            content_type="audio/wav",
            request={"text": key},
            generation_id=f"gen-{key}",
            max_bytes=max_bytes,
        )


async def use(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> tts_cache.Cached | None:
    """As the service uses an entry: read it, then count the use (it batches the counts of many hits)."""
    async with sessionmaker.begin() as session:
        cached = await tts_cache.peek(session, key)
        if cached is not None:
            await tts_cache.count_uses(session, {key: 1})
    return cached


async def test_uses_are_counted_per_key_in_one_statement(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Several hits of several entries written at once: each entry gains its own count; unknown keys
    change nothing."""
    for key in ("a", "b", "c"):
        await put(sessionmaker, key, 10)
    async with sessionmaker.begin() as session:
        await tts_cache.count_uses(session, {"a": 3, "b": 1, "gone": 7})
    async with sessionmaker() as session:
        rows = {key: hits for key, hits in await session.execute(text("SELECT key, hits FROM tts_cache"))}
    assert rows == {"a": 3, "b": 1, "c": 0}


async def stats(sessionmaker: async_sessionmaker[AsyncSession]) -> tts_cache.CacheStats:
    async with sessionmaker() as session:
        return await tts_cache.stats(session)


async def test_use_returns_the_bytes_and_counts_hits(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A stored entry comes back byte for byte; every use counts a hit; unknown keys are None."""
    await put(sessionmaker, "k1", 300, fill=b"\x00\xff")
    first = await use(sessionmaker, "k1")
    assert first is not None
    assert first.content == b"\x00\xff" * 300
    assert first.content_type == "audio/wav"
    await use(sessionmaker, "k1")
    assert await use(sessionmaker, "nope") is None
    figures = await stats(sessionmaker)
    assert (figures.entries, figures.bytes, figures.hits) == (1, 600, 2)


async def test_eviction_removes_least_recently_used_until_it_fits(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Past the bound, the entries used longest ago go first, and only as many as needed."""
    for key in ("a", "b", "c"):
        assert await put(sessionmaker, key, 100, max_bytes=350) == 0
    await use(sessionmaker, "a")  # a is now more recent than b and c
    evicted = await put(sessionmaker, "d", 100, max_bytes=350)
    assert evicted == 1
    assert await use(sessionmaker, "b") is None
    for key in ("a", "c", "d"):
        assert await use(sessionmaker, key) is not None
    evicted = await put(sessionmaker, "e", 250, max_bytes=350)
    assert evicted == 2  # e (250) leaves room for one 100-byte entry, the most recent (d): a and c go
    assert {k for k in "acde" if await use(sessionmaker, k) is not None} == {"d", "e"}
    figures = await stats(sessionmaker)
    assert figures.bytes == 350
    assert figures.entries == 2


async def test_entry_larger_than_the_cache_is_not_stored(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """An entry that could never fit is skipped instead of flushing everything else."""
    await put(sessionmaker, "small", 10, max_bytes=100)
    assert await put(sessionmaker, "huge", 101, max_bytes=100) == 0
    assert await use(sessionmaker, "huge") is None
    assert await use(sessionmaker, "small") is not None


async def test_concurrent_puts_of_one_key_keep_one_entry(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Two processes storing the same result at once end with one row, and neither fails."""
    results = await asyncio.gather(*(put(sessionmaker, "same", 50, fill=bytes([i])) for i in range(5)))
    assert results == [0] * 5
    figures = await stats(sessionmaker)
    assert (figures.entries, figures.bytes) == (1, 50)
    cached = await use(sessionmaker, "same")
    assert cached is not None
    assert len(set(cached.content)) == 1
