"""WORKER_CONCURRENCY is split among the fetch loops: the process never runs more tasks at once than it says."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.worker.task_queue import loop_concurrencies


@pytest.mark.parametrize(
    ("concurrency", "loops", "split"),
    [(4, 2, [2, 2]), (5, 2, [3, 2]), (1, 2, [1]), (3, 4, [1, 1, 1]), (16, 1, [16])],
)
def test_concurrency_is_shared_among_the_loops_and_sums_to_the_setting(
    concurrency: int, loops: int, split: list[int]
) -> None:
    settings = Settings(worker_concurrency=concurrency, worker_fetch_loops=loops)
    assert loop_concurrencies(settings) == split
    assert sum(split) == concurrency
