"""Batching: items arriving while a call is in flight share the next call; each caller still gets its own
result, its own error, and its item written even if it stops waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.store.batching import Batcher


class Store:
    """A write that takes a moment (as a commit does) and remembers what it wrote, in which batches."""

    def __init__(self, refuse: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.refuse = refuse

    async def write(self, items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.01)
        if self.refuse in items:
            raise ValueError(f"{self.refuse} refused")
        self.batches.append(list(items))
        return [i * 10 for i in items]


def group(store: Store, *, runners: int = 1, max_items: int = 100, max_bytes: int = 1000) -> Batcher[int, int]:
    return Batcher(store.write, runners=runners, max_items=max_items, max_bytes=max_bytes, size=lambda i: i)


async def test_a_lone_item_is_written_at_once_and_a_burst_shares_few_writes() -> None:
    store = Store()
    commits = group(store)
    assert await commits.submit(1) == 10
    assert store.batches == [[1]]
    results = await asyncio.gather(*(commits.submit(i) for i in range(2, 42)))
    assert results == [i * 10 for i in range(2, 42)]
    assert sorted(i for b in store.batches[1:] for i in b) == list(range(2, 42))
    assert len(store.batches) <= 3  # the first of the burst alone, the rest together


async def test_writes_are_bounded_in_items_and_bytes() -> None:
    store = Store()
    commits = group(store, max_items=5, max_bytes=50)
    await asyncio.gather(*(commits.submit(i) for i in range(1, 31)))
    assert all(len(b) <= 5 for b in store.batches)
    assert all(sum(b) <= 50 or len(b) == 1 for b in store.batches)
    assert sorted(i for b in store.batches for i in b) == list(range(1, 31))


async def test_a_refused_item_fails_alone() -> None:
    store = Store(refuse=7)
    commits = group(store)
    results = await asyncio.gather(*(commits.submit(i) for i in range(1, 15)), return_exceptions=True)
    assert isinstance(results[6], ValueError)
    assert [r for n, r in enumerate(results) if n != 6] == [i * 10 for i in range(1, 15) if i != 7]


async def test_an_item_is_written_even_when_its_caller_stops_waiting() -> None:
    store = Store()
    commits = group(store)
    caller = asyncio.create_task(commits.submit(5))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await commits.aclose()
    assert store.batches == [[5]]
