"""TTS with a Postgres cache: validate, look up by request hash, else one Hume call shared by every
identical request in flight, stored for next time (size-bounded, least recently used evicted first).

A miss runs in its own task feeding a `Broadcast`: the requests waiting on it (streamed or not) read the
same chunks, and a client that hangs up does not waste the synthesis: it still lands in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.errors import InvalidInput
from app.hume.tts_client import FORMATS, PROVIDERS, HumeTts, TtsSpec
from app.store import tts_cache
from app.store.tts_cache import Cached, CacheStats

log = structlog.get_logger(__name__)

MAX_TEXT = 5000  # Hume's per-utterance limits (HUME.md 5.2)
MAX_DESCRIPTION = 1000
MAX_VOICE_REF = 256
SPEED_RANGE = (0.5, 2.0)
FIELDS = ("text", "description", "voice", "speed", "format", "stream")
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


def _text(data: dict[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    if "\x00" in value:
        # Postgres text cannot hold NUL: such a request could never be cached and every repeat cost a call.
        raise InvalidInput(name, "must not contain NUL characters")
    # NFC and trimmed: the same words typed two ways are one cache entry and one Hume request.
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        if required:
            raise InvalidInput(name, "must not be empty")
        return None
    if len(value) > limit:
        raise InvalidInput(name, f"at most {limit} characters (Hume's limit), got {len(value)}")
    return value


def _voice(raw: Any) -> tuple[str | None, str | None, str]:
    if raw is None:
        return None, None, PROVIDERS[1]
    if not isinstance(raw, dict):
        raise InvalidInput("voice", 'must be an object: {"id": ...} or {"name": ...}, with an optional provider')
    unknown = sorted(set(raw) - {"id", "name", "provider"})
    if unknown:
        raise InvalidInput(f"voice.{unknown[0]}", "unknown field (allowed: id, name, provider)")
    if ("id" in raw) == ("name" in raw):
        raise InvalidInput("voice", "give exactly one of id or name")
    which = "id" if "id" in raw else "name"
    ref = raw[which]
    if not isinstance(ref, str) or not ref.strip() or len(ref) > MAX_VOICE_REF or "\x00" in ref:
        raise InvalidInput(
            f"voice.{which}", f"must be a non-empty, NUL-free string of at most {MAX_VOICE_REF} characters"
        )
    provider = raw.get("provider")
    if provider is None:
        provider = PROVIDERS[1]  # Hume's default
    if provider not in PROVIDERS:
        raise InvalidInput("voice.provider", f"must be one of {', '.join(PROVIDERS)}")
    ref = ref.strip()
    return (ref, None, provider) if which == "id" else (None, ref, provider)


def parse_request(data: dict[str, Any]) -> TtsRequest:
    """The request body as a TtsRequest; InvalidInput (422) names the first bad field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field (allowed: {', '.join(FIELDS)})")
    text = _text(data, "text", MAX_TEXT, required=True)
    assert text is not None
    description = _text(data, "description", MAX_DESCRIPTION, required=False)
    voice_id, voice_name, provider = _voice(data.get("voice"))
    speed = data.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise InvalidInput("speed", "must be a number")
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise InvalidInput("speed", f"must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}")
    fmt = data.get("format", "mp3")
    if fmt is None:
        fmt = "mp3"
    if fmt not in FORMATS:
        raise InvalidInput("format", f"must be one of {', '.join(FORMATS)}")
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidInput("stream", "must be true or false")
    spec = TtsSpec(
        text=text,
        description=description,
        voice_id=voice_id,
        voice_name=voice_name,
        voice_provider=provider,
        speed=float(speed),
        format=str(fmt),
    )
    return TtsRequest(spec=spec, stream=stream)


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
    def __init__(self, *, hume: HumeTts, sessionmaker: async_sessionmaker[AsyncSession], max_bytes: int) -> None:
        self.hume = hume
        self.sessionmaker = sessionmaker
        self.max_bytes = max_bytes
        self.counters = Counters()
        self._inflight: dict[str, Broadcast] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _lookup(self, key: str) -> Cached | None:
        async with self.sessionmaker.begin() as session:
            return await tts_cache.use(session, key)

    async def open(self, request: TtsRequest, kind: Kind = "audio") -> Outcome:
        """The answer as chunks: the cached bytes at once, or a share of the one in-flight synthesis."""
        key = request.key(kind)
        cached = await self._lookup(key)
        if cached is not None:
            self.counters.hits += 1
            metrics.TTS_CACHE.labels("hit").inc()
            return Outcome("hit", cached.content_type, _once(cached.content))
        self.counters.misses += 1
        metrics.TTS_CACHE.labels("miss").inc()
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
            async with self.sessionmaker() as session:
                stored = await tts_cache.peek(session, key)
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
