"""Single flight: concurrent callers asking for the same key share one call instead of each making it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one call per key is in flight in this process; late arrivals await its result.

    The call runs in its own task, so a caller that gives up (a client disconnect cancels its handler)
    neither cancels it for the others nor wastes the upstream work.
    """

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def busy(self, key: K) -> bool:
        return key in self._inflight

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        result, _ = await self.do_shared(key, call)
        return result

    async def do_shared(self, key: K, call: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """(result, shared): shared is True when this caller joined a call another caller started."""
        future = self._inflight.get(key)
        shared = future is not None
        if future is None:
            future = asyncio.ensure_future(call())
            self._inflight[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(future), shared

    def _finished(self, key: K, future: asyncio.Future[V]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # marks it retrieved: every waiter may have gone away
