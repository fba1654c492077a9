"""The shared request budget (app/store/request_budget.py): reservations from several connection pools at
once, as from several processes, plan their requests so that no 60 s window holds more than the budget."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.store import request_budget
from app.store.db import make_engine, make_sessionmaker
from app.store.request_budget import Budget


def most_in_any_window(starts: list[float], window_s: float) -> int:
    starts = sorted(starts)
    most, first = 0, 0
    for last, at in enumerate(starts):
        while at - starts[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_concurrent_reservations_from_two_pools_never_overfill_a_minute(database_url: str) -> None:
    # 30 a minute with a burst of 3: 45 requests must spread over more than a minute.
    budget = Budget("test:shared", per_minute=30, burst=3)
    engines = [make_engine(database_url, pool_size=4) for _ in range(2)]
    try:
        makers = [make_sessionmaker(engine) for engine in engines]

        async def one(i: int) -> float:
            wait = await request_budget.reserve(makers[i % 2], budget)
            return time.time() + wait

        starts = await asyncio.gather(*(one(i) for i in range(45)))
    finally:
        for engine in engines:
            await engine.dispose()
    first = min(starts)
    assert sum(1 for at in starts if at - first < 0.5) == budget.burst  # the burst goes at once, then pacing
    assert most_in_any_window(starts, 60.0) <= budget.per_minute
    # Not slower than needed either: the 45th request starts about (45 - 3) intervals after the first.
    assert max(starts) - first == pytest.approx((45 - budget.burst) * budget.interval_s, abs=0.5)


async def test_budgets_are_independent_and_rest_after_idling(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=2)
    try:
        maker = make_sessionmaker(engine)
        fast = Budget("test:a", per_minute=600, burst=2)
        waits = [await request_budget.reserve(maker, fast) for _ in range(4)]
        assert waits[:2] == [0.0, 0.0] and 0 < waits[2] < waits[3] <= 2 * fast.interval_s + 0.05
        assert await request_budget.reserve(maker, Budget("test:b", per_minute=600, burst=2)) == 0.0
        await asyncio.sleep(4 * fast.interval_s)
        assert await request_budget.reserve(maker, fast) == 0.0
    finally:
        await engine.dispose()


def test_a_burst_must_leave_room_in_the_minute() -> None:
    with pytest.raises(ValueError, match="burst"):
        Budget("x", per_minute=10, burst=10)
