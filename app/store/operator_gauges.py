"""The operator gauges' reads: one cheap statement each, under a short statement timeout, so a scrape of
/metrics costs the database little and never waits on it for long."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.metrics import GaugeReadings

log = structlog.get_logger(__name__)
T = TypeVar("T")

# The partial index procrastinate keeps on todo/doing tasks answers this without touching finished ones.
_QUEUE = "SELECT task_name, count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') GROUP BY task_name"
_DEAD = "SELECT count(*) FROM inbox_event WHERE state = 'dead'"  # ix_inbox_event_state
_OLDEST = (
    "SELECT coalesce(extract(epoch FROM now() - min(received_at)), 0) FROM inbox_event"
    " WHERE state IN ('received', 'processing')"
)
# ix_job_status_deadline leads with status: an index-only scan on a vacuumed table.
_JOBS = "SELECT status, count(*) FROM job GROUP BY status"


async def read(sessionmaker: async_sessionmaker[AsyncSession], *, timeout_s: float = 1.0) -> GaugeReadings:
    """Every gauge that could be read within `timeout_s` each; the others are None. Never raises."""
    try:
        # The overall bound also covers waiting for a pooled connection (30 s when the pool is exhausted).
        async with asyncio.timeout(timeout_s * 5), sessionmaker() as session, session.begin():
            timeout_ms = str(max(1, int(timeout_s * 1000)))
            await session.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": timeout_ms})

            async def attempt(what: str, query: Callable[[], Awaitable[T]]) -> T | None:
                # A savepoint per read: one timing out must not abort the others' transaction.
                try:
                    async with session.begin_nested():
                        return await query()
                except Exception as exc:
                    log.warning("metrics gauge not read", gauge=what, error=type(exc).__name__)
                    return None

            async def pairs(sql: str) -> dict[str, int]:
                rows: Any = await session.execute(text(sql))
                return {str(name): int(count) for name, count in rows}

            async def number(sql: str) -> float:
                return float((await session.execute(text(sql))).scalar_one())

            queue = await attempt("queue_depth", lambda: pairs(_QUEUE))
            dead = await attempt("dead_events", lambda: number(_DEAD))
            oldest = await attempt("oldest_waiting_event_seconds", lambda: number(_OLDEST))
            jobs = await attempt("jobs", lambda: pairs(_JOBS))
    except Exception as exc:  # the database is down: the scrape still shows the process's own metrics
        log.warning("metrics gauges not read", error=type(exc).__name__)
        return GaugeReadings()
    return GaugeReadings(
        queue_depth=queue, dead_events=None if dead is None else int(dead), oldest_waiting_event_seconds=oldest,
        jobs=jobs,
    )  # fmt: skip


async def queue_depth(session: AsyncSession) -> dict[str, int]:
    """Queue tasks waiting (todo) and running (doing), over every task name."""
    rows = await session.execute(
        text("SELECT status::text, count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') GROUP BY 1")
    )
    depth = {"todo": 0, "doing": 0}
    depth.update({status: int(n) for status, n in rows})
    return depth
