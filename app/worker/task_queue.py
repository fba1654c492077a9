"""The queue: one procrastinate app with the pipeline's tasks (the event runner, the job starter, the
reconciler), its retry strategy, and the worker loop that survives database outages.

Tasks read their dependencies from the worker's `additional_context["deps"]`, so the same task code runs
in the server process and in `python -m app worker`. Retry timings come from Settings (WORKER_*).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import weakref
from collections.abc import Mapping
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
import structlog
from procrastinate import JobContext
from sqlalchemy import text

from app.config import Settings
from app.config.sources import libpq_url
from app.deps import Deps, QueueTask
from app.inbox.pipeline import PROCESS_EVENT, PROCESS_EVENTS, PRUNE, RECONCILE, START_JOB
from app.worker import event_runner, job_starter, reconciler
from app.worker.backoff import Backoff
from app.worker.event_runner import task_deps

log = structlog.get_logger(__name__)


def _cron(interval_s: float) -> str:
    """procrastinate's cron takes a sixth field for seconds; intervals of a minute or more use minutes."""
    if interval_s < 60:
        return f"* * * * * */{max(1, int(interval_s))}"
    return f"*/{max(1, min(59, int(interval_s // 60)))} * * * *"


def _with_deps(run: QueueTask) -> Any:
    async def task(context: JobContext, **arguments: Any) -> None:
        await run(task_deps(context), **arguments)

    return task


async def _queue_session(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)
    # procrastinate's own bookkeeping (fetch a job, finish it, heartbeats) does not wait for its WAL flush:
    # the fetch loop takes one job per round trip, and a flush (~2.5 ms here, far more on a busy disk) in
    # each fetch and finish halved outbound delivery throughput. A Postgres crash can lose the last fraction
    # of a second of these changes only: a job goes back to todo and runs again, or stays doing under a worker
    # that the outage replaced, where the reconciler requeues it; our tasks are idempotent for that already
    # (at-least-once). What tasks write on their own connections (an attempt's record, an ingest, a defer
    # inside our transactions) keeps the server's synchronous commit.
    await connection.execute("SET synchronous_commit = off")


# procrastinate pings every connection it takes from its pool (an empty query: one round trip before
# each fetch and each finish). A connection handed out moments ago, whose query then ran, is as alive as one
# just pinged, so only those not handed out for longer than this are pinged; after a database outage, they
# all are. (Noted when handed out, not when returned: a pool `reset` hook would send every return through
# the pool's background task, which cost more than the ping it saved.)
PING_IDLE_AFTER_S = 1.0
_handed_out_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _ping_if_idle(connection: psycopg.AsyncConnection[Any]) -> None:
    now = time.monotonic()
    last = _handed_out_at.get(connection, 0.0)
    _handed_out_at[connection] = now
    if now - last > PING_IDLE_AFTER_S:
        await psycopg_pool.AsyncConnectionPool.check_connection(connection)


def _queue_pool(**options: Any) -> psycopg_pool.AsyncConnectionPool[Any]:
    return psycopg_pool.AsyncConnectionPool(**{**options, "check": _ping_if_idle})


def make_queue(
    database_url: str, settings: Settings, tasks: Mapping[str, QueueTask] | None = None
) -> procrastinate.App:
    """A procrastinate app with the pipeline's tasks (and `tasks`, features' own); one per process."""
    retry = Backoff.from_settings(settings)
    # Each running task finishes through the pool, and each fetch loop needs one too, plus one it holds for
    # LISTEN: a pool smaller than that makes finished tasks queue for a connection while their slots stay taken.
    # autocommit: procrastinate's own queries are one statement each (fetch, finish, heartbeat); in a
    # transaction each would cost BEGIN and COMMIT round trips too. Defers on our connection join our transaction.
    # _queue_session also turns off waiting for the WAL flush on these connections (see there why).
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), configure=_queue_session, pool_factory=_queue_pool,
        min_size=1, max_size=settings.worker_concurrency + 2 * len(loop_concurrencies(settings)),
    )  # fmt: skip
    app = procrastinate.App(connector=connector)
    app.task(name=START_JOB, pass_context=True, retry=retry)(job_starter.submit_job)
    app.task(name=PROCESS_EVENT, pass_context=True, retry=retry)(event_runner.process_event)
    app.task(name=PROCESS_EVENTS, pass_context=True, retry=retry)(event_runner.process_events)
    for name, run in (tasks or {}).items():
        app.task(name=name, pass_context=True, retry=retry)(_with_deps(run))
    app.periodic(cron=_cron(settings.reconcile_interval_s), periodic_id=RECONCILE)(
        app.task(name=RECONCILE, pass_context=True, queueing_lock=RECONCILE)(reconciler.reconcile)
    )
    app.periodic(cron="41 * * * *", periodic_id=PRUNE)(
        app.task(name=PRUNE, pass_context=True, queueing_lock=PRUNE)(reconciler.prune)
    )
    return app


def loop_concurrencies(settings: Settings) -> list[int]:
    """WORKER_CONCURRENCY split among the fetch loops, summing to it exactly (a concurrency of 1 stays one
    task at a time, in one loop)."""
    total = settings.worker_concurrency
    loops = min(settings.worker_fetch_loops, total)
    return [total // loops + (1 if i < total % loops else 0) for i in range(loops)]


def worker_options(deps: Deps, concurrency: int) -> dict[str, Any]:
    """One procrastinate worker's options (a process runs one per fetch loop)."""
    return {
        "concurrency": concurrency,
        "additional_context": {"deps": deps},
        # run_worker owns signals: procrastinate's handlers would end the worker where we restart it.
        "install_signal_handlers": False,
        "shutdown_graceful_timeout": 10,
        "update_heartbeat_interval": deps.settings.worker_heartbeat_s,
        "stalled_worker_timeout": deps.settings.stalled_after_s,
        # NOTIFY wakes the worker for new tasks; polling finds retries whose time has come (no NOTIFY).
        "fetch_job_polling_interval": 1.0,
        "wait": True,
    }


async def _database_answers(deps: Deps) -> bool:
    try:
        async with deps.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _fetch_loops(deps: Deps) -> None:
    """WORKER_FETCH_LOOPS procrastinate workers, ended together: when one stops (or fails), so do the others."""
    runs = [
        asyncio.create_task(deps.queue.run_worker_async(**worker_options(deps, concurrency)))
        for concurrency in loop_concurrencies(deps.settings)
    ]
    try:
        done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
        for run in done:
            run.result()  # a failure is the caller's to log and restart after
    finally:
        for run in runs:
            run.cancel()  # procrastinate shuts down gracefully on cancellation
        await asyncio.gather(*runs, return_exceptions=True)


async def run_worker(deps: Deps, *, install_signal_handlers: bool = False, watch_every_s: float = 1.0) -> None:
    """Run the worker until cancelled (or SIGINT/SIGTERM with `install_signal_handlers`), restarting it
    when it stops by itself and after every database outage.

    procrastinate stops a worker whose heartbeat or listener fails, and a task that ended while the
    database was away stays `doing` under the live worker's id, where no stalled-job check finds it. A
    fresh worker (a new id) after the outage turns those into stalled jobs the reconciler requeues.
    """
    stopping = asyncio.Event()
    if install_signal_handlers:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
    delay = 0.5
    while not stopping.is_set():
        run = asyncio.create_task(_fetch_loops(deps))
        outage = False
        try:
            while not run.done() and not stopping.is_set():
                await asyncio.wait({run}, timeout=watch_every_s)
                if run.done() or stopping.is_set():
                    break
                if not await _database_answers(deps):
                    outage = True
                elif outage:
                    log.warning("database is back; starting a fresh worker")
                    break
        finally:
            if not run.done():
                run.cancel()  # procrastinate shuts down gracefully on cancellation
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
        if stopping.is_set():
            return
        if run.done() and not run.cancelled() and run.exception() is not None:
            log.warning("worker failed; restarting", error=repr(run.exception()), in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        else:
            delay = 0.5
