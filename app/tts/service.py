"""TTS with a Postgres cache: look up by request hash, else one Hume call shared by every
identical request in flight, stored for next time (size-bounded, least recently used evicted first).
With Hume's own voice-era host, whose TTS ended 2026-11-13, the cache is the only source: a miss is a 410.

A miss runs in its own task feeding a `Broadcast`: the requests waiting on it (streamed or not) read the
same chunks, and a client that hangs up does not waste the synthesis: it still lands in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from app.errors import HumeRetired
from app.hume import catalog
from app.hume.tts_client import HumeTts, TtsSpec
from app.store import tts_cache
from app.store.tts_cache import Cached, CacheStats

log = structlog.get_logger(__name__)

KEY_VERSION = 1  # bump when the meaning of a cached entry changes

Kind = Literal["audio", "json"]


@dataclass(frozen=True)
class TtsRequest:
    spec: TtsSpec
    stream: bool = False
    tenant: str = "default"

    def key(self, kind: Kind) -> str:
        """Identical requests (after normalization) of one tenant share an entry; streamed or not, the audio
        is the same. Tenants never share one: a hit would tell a tenant what another one synthesized."""
        canonical = {"v": KEY_VERSION, "kind": kind, **self.spec.canonical()}
        if self.tenant != "default":  # the default tenant keeps the keys cached before tenants existed
            canonical["tenant"] = self.tenant
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Broadcast:
    """Chunks of one in-flight synthesis, readable from the start by any number of waiters."""

    content_type: str
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def publish(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self._notify()

    def finish(self, error: BaseException | None = None) -> None:
        self.done, self.error = True, error
        self._notify()

    async def read(self) -> AsyncIterator[bytes]:
        index = 0
        while True:
            changed = self._changed
            while index < len(self.chunks):
                yield self.chunks[index]
                index += 1
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            await changed.wait()


@dataclass
class Counters:
    """Since this process started (the table's own totals are in CacheStats)."""

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    upstream_calls: int = 0
    evictions: int = 0
    store_errors: int = 0


@dataclass(frozen=True)
class Outcome:
    cache: Literal["hit", "miss"]
    content_type: str
    chunks: AsyncIterator[bytes]


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


class TtsService:
    def __init__(
        self, *, hume: HumeTts, sessionmaker: async_sessionmaker[AsyncSession], max_bytes: int, retired: bool = False
    ) -> None:
        self.hume = hume
        self.retired = retired
        """Hume itself would answer a miss, and it retired TTS (app.hume.catalog): the cache is the only source."""
        self.sessionmaker = sessionmaker
        self.max_bytes = max_bytes
        self.counters = Counters()
        self._inflight: dict[str, Broadcast] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._uses: dict[str, int] = {}
        """Hits not yet written, by cache key (see _count_use)."""
        self._writing_uses: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        if self._writing_uses is not None:
            await asyncio.gather(self._writing_uses, return_exceptions=True)  # the last hits are counted
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _lookup(self, key: str) -> Cached | None:
        # One statement outside a transaction: no BEGIN and ROLLBACK round trips around a hit's read.
        async with self.sessionmaker() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return await tts_cache.peek(session, key)

    def _count_use(self, key: str) -> None:
        """A hit's count and LRU time are written after the answer, by one statement for every hit since
        the last one: a transaction per hit (three round trips and an UPDATE) cost over half of a hit's CPU
        (py-spy, bench_tts)."""
        self._uses[key] = self._uses.get(key, 0) + 1
        if self._writing_uses is None or self._writing_uses.done():
            self._writing_uses = asyncio.create_task(self._write_uses())

    async def _write_uses(self) -> None:
        while self._uses:
            uses, self._uses = self._uses, {}
            try:
                async with self.sessionmaker.begin() as session:
                    await tts_cache.count_uses(session, uses)
            except Exception as exc:
                # Bookkeeping only (a deadlock with another process's write, the database away): the hits
                # are not counted and those entries look older to eviction; every answer was served.
                log.warning("TTS cache hits not counted", error=type(exc).__name__, entries=len(uses))

    async def open(self, request: TtsRequest, kind: Kind = "audio") -> Outcome:
        """The answer as chunks: the cached bytes at once, or a share of the one in-flight synthesis."""
        key = request.key(kind)
        cached = await self._lookup(key)
        if cached is not None:
            self._count_use(key)
            self.counters.hits += 1
            metrics.TTS_CACHE.labels("hit").inc()
            return Outcome("hit", cached.content_type, _once(cached.content))
        self.counters.misses += 1
        metrics.TTS_CACHE.labels("miss").inc()
        if self.retired:
            raise HumeRetired(f"This text is not in the TTS cache. {catalog.TTS.retired_message()}")
        broadcast = self._inflight.get(key)
        if broadcast is None:
            content_type = "application/json" if kind == "json" else request.spec.content_type
            broadcast = Broadcast(content_type=content_type)
            self._inflight[key] = broadcast
            task = asyncio.create_task(self._produce(key, kind, request, broadcast))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.counters.coalesced += 1
        return Outcome("miss", broadcast.content_type, broadcast.read())

    async def _produce(self, key: str, kind: Kind, request: TtsRequest, broadcast: Broadcast) -> None:
        spec = request.spec
        generation_id: str | None = None
        try:
            # A request that looked before an earlier flight stored its result must not pay Hume again.
            stored = await self._lookup(key)
            if stored is not None:
                broadcast.publish(stored.content)
            else:
                self.counters.upstream_calls += 1
                if request.stream and kind == "audio":
                    async for chunk in self.hume.stream(spec):
                        broadcast.publish(chunk)
                else:
                    synthesis = await self.hume.synthesize(spec, keep_json=kind == "json")
                    generation_id = synthesis.generation_id
                    body = synthesis.json if kind == "json" and synthesis.json is not None else synthesis.audio
                    broadcast.publish(body)
                # Stored before anyone sees the end: a client that asks again right after gets a hit.
                content = b"".join(broadcast.chunks)
                await self._store(key, kind, request, content, broadcast.content_type, generation_id)
            broadcast.finish()
        except BaseException as exc:
            broadcast.finish(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._inflight.pop(key, None)

    async def _store(
        self, key: str, kind: Kind, request: TtsRequest, content: bytes, content_type: str, generation_id: str | None
    ) -> None:
        try:
            async with self.sessionmaker.begin() as session:
                evicted = await tts_cache.put(
                    session,
                    key=key,
                    kind=kind,
                    content=content,
                    content_type=content_type,
                    request=request.spec.canonical(),
                    generation_id=generation_id,
                    max_bytes=self.max_bytes,
                )
        except Exception as exc:
            # The caller already has the audio; a cache that cannot store only costs a future miss.
            self.counters.store_errors += 1
            log.warning("TTS cache store failed", error=type(exc).__name__)
            return
        if evicted:
            self.counters.evictions += evicted
            log.info("TTS cache evicted entries", evicted=evicted, max_bytes=self.max_bytes)

    async def stats(self) -> CacheStats:
        async with self.sessionmaker() as session:
            return await tts_cache.stats(session)
