"""The billed-runs reader with nothing to read: it must end, not queue itself again at once (a worker that
did so ran ~20 empty reader tasks a second for good, a fifth of its time, under every other task)."""

from __future__ import annotations

from sqlalchemy import text

from app.deps import Deps
from app.inbox.pipeline import READ_BILLED
from app.store import hume_usage
from app.usage import billed_runs


async def test_a_reader_with_no_run_waiting_queues_no_other(deps: Deps) -> None:
    async with deps.sessionmaker() as session:
        assert await hume_usage.next_read_in(session) is None
    await billed_runs.read_billed(deps)
    assert await billed_runs.keep_reading(deps) == 0
    async with deps.sessionmaker() as session:
        queued = await session.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"), {"name": READ_BILLED}
        )
        assert queued.scalar_one() == 0
