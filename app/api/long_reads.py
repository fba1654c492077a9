"""A bounded share of the pool for long reads (CSV exports), so webhook acknowledgement and /readyz always
find a connection: at most `export_connections` run at once, each with a deadline on every write to its
client (a reader that stops reading is cut off and its connection returned), and the first chunk is read
before the response starts (a pool timeout is then a clean 503, not a 200 with a broken stream)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from weakref import WeakKeyDictionary

import structlog
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.deps import Deps
from app.errors import Unavailable

log = structlog.get_logger(__name__)

# Of the 20 pooled connections (10 + 10 overflow), a quarter by default.
DEFAULT_SHARE = 5
# How long a long read waits for one of its slots before answering 503.
_SLOT_WAIT_S = 2.0
# One gate per pool (keyed by its sessionmaker: Deps itself is not hashable).
_gates: WeakKeyDictionary[object, asyncio.Semaphore] = WeakKeyDictionary()


def _gate(deps: Deps) -> asyncio.Semaphore:
    gate = _gates.get(deps.sessionmaker)
    if gate is None:
        gate = _gates[deps.sessionmaker] = asyncio.Semaphore(deps.settings.export_connections or DEFAULT_SHARE)
    return gate


class _DeadlineStream(StreamingResponse):
    def __init__(self, first: bytes, rest: AsyncIterator[bytes], done: Callable[[], Any], write_timeout_s: float,
                 **kwargs: Any) -> None:  # fmt: skip
        async def body() -> AsyncIterator[bytes]:
            yield first
            async for chunk in rest:
                yield chunk

        super().__init__(body(), **kwargs)
        self._rest = rest
        self._done = done
        self._write_timeout_s = write_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def timed_send(message: Message) -> None:
            async with asyncio.timeout(self._write_timeout_s):
                await send(message)

        try:
            await super().__call__(scope, receive, timed_send)
        except TimeoutError:
            log.info("long read cut off: the client stopped reading", path=scope.get("path"))
        finally:
            with contextlib.suppress(Exception):
                await self._rest.aclose()  # type: ignore[attr-defined]
            self._done()


async def bounded_stream(deps: Deps, chunks: AsyncIterator[bytes], **response_kwargs: Any) -> Response:
    """A streamed response of `chunks` that holds one of the long-read slots until it ends or is cut off."""
    gate = _gate(deps)
    try:
        async with asyncio.timeout(_SLOT_WAIT_S):
            await gate.acquire()
    except TimeoutError:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise Unavailable("too many exports at once; retry shortly", headers={"Retry-After": "5"}) from None
    try:
        first = await anext(chunks, b"")
    except BaseException:
        gate.release()
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    return _DeadlineStream(first, chunks, gate.release, deps.settings.export_write_timeout_s, **response_kwargs)
