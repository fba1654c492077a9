"""Batching: concurrent callers' items handled by one call, each caller still getting its own answer.

The webhook acknowledgement path uses it twice. Lookups of callback targets share one round trip.
Writes share one statement and its commit (group commit): a commit that NOTIFYs (every procrastinate
defer does) holds Postgres's database-wide notify lock until its WAL record is flushed, so deliveries
written one statement each queue behind each other's fsync: a few hundred a second however fast the
rest is. Here the items that arrive while a call is in flight wait for the next one and share it, so a
burst of deliveries costs a few commits, not one each. No item waits for company: a caller that finds
a runner free is handled at once.

Every caller still gets its own result or its own exception: when a shared call fails, each of its
items is tried alone, so one item Postgres refuses cannot fail the others with it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        call: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        runners: int,
        max_items: int,
        max_bytes: int,
        size: Callable[[T], int],
    ) -> None:
        """`call(items)` handles the items at once (one statement, one transaction) and returns one result
        per item, in order. At most `runners` calls run at once (each holds a connection); a call takes at
        most `max_items` items and, past the first, at most `max_bytes` of them by `size`."""
        self._call = call
        self._runners = runners
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._size = size
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._running) < self._runners:
            task = asyncio.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        # The call goes on if this caller gives up (its client left): it runs in its own task, which skips
        # the cancelled future; a write is stored either way, and a sender that saw no answer retries into
        # the duplicate check. (No shield: its two futures and callbacks were 1% of an acknowledgement.)
        return await future

    async def aclose(self) -> None:
        """Let the calls in flight finish (their callers are waiting for them)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch = [self._pending.popleft()]
        total = self._size(batch[0][0])
        while self._pending and len(batch) < self._max_items:
            total += self._size(self._pending[0][0])
            if total > self._max_bytes:
                break
            batch.append(self._pending.popleft())
        return batch

    async def _drain(self) -> None:
        while self._pending:
            batch = self._take()
            try:
                await self._settle(batch)
            except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("shutting down"))
                raise

    async def _settle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._call([item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:
                    await self._settle([one])
            elif not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
