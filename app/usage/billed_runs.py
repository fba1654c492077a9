"""Reading what Hume billed, run by run, and finding the runs Hume billed that no job of ours owns.

After each v1 request Hume answered and each live session that ended (app/usage/session_meter.py), its run's
`metered_seconds` are read from the runs API (`GET /v1/expression/run/{run_id}`) in a queued task, never
inline: every read is a request of the organization's shared per-minute budget (the ExpressionClient paces
it), and runs "may appear late and are rarely not recorded" (HUME-V1-FACTS §6 RUNS). So one task at a time
reads every run that is due (from the runs list when several are, a page of 200 a request, else one by one),
a run not found (or still live) is read again with doubling waits, and after HUME_RUN_READ_TRIES reads our
estimate stands, marked `estimate`. Hume's figure replaces the estimate for the job and the tenant's day at
once (app/store/hume_usage.settle)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import structlog
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.deps import Deps
from app.hume.errors import HumeError, HumeTransientError
from app.hume.expression_client import RUNS_PAGE_SIZE, RunBill
from app.inbox.pipeline import READ_BILLED
from app.store import hume_usage
from app.store.db import driver_connection
from app.store.hume_usage import RunToRead

log = structlog.get_logger(__name__)

READ_LEASE_S = 300.0
"""A run taken by a reader that then died is read again after this long."""
READS_AT_ONCE = 4
"""Reads in flight per task; the organization's request budget paces them anyway."""
UNOWNED_CHECK = "unowned_runs"
LIST_FROM = 3
"""With this many runs due at once, the runs list is read first (a page of 200 runs is one request)."""
CLOCK_SLACK = timedelta(minutes=5)
"""The list starts this long before the oldest request was sent: Hume's clock stamps `started_at`, ours the
reservation."""


async def schedule_read(session: AsyncSession, deps: Deps, *, in_s: float) -> None:
    """Queue the reader in `in_s` seconds, in the caller's transaction, unless one is already waiting (it reads
    every run due when it runs, and re-queues itself while runs wait, at most HUME_RUN_READ_DELAY_S apart)."""
    connection = await driver_connection(session)
    task = deps.queue.configure_task(
        READ_BILLED, connection=connection, queueing_lock=READ_BILLED, schedule_in={"seconds": max(0.0, in_s)}
    )
    try:
        # A savepoint on the driver's connection (the one the defer runs on): the refused insert must not abort
        # the caller's transaction, which would then commit as a silent rollback.
        async with connection.transaction():
            await task.defer_async()
    except AlreadyEnqueued:
        pass


def _retry_in(settings_delay_s: float, reads: int) -> float:
    """The wait after the `reads`-th unsuccessful read: the first read came HUME_RUN_READ_DELAY_S after the
    answer, and each wait is twice the one before."""
    return settings_delay_s * 2.0**reads


async def _listed(deps: Deps, due: list[RunToRead]) -> dict[str, RunBill]:
    """Those of `due` found in the organization's runs list (newest first, which carries `metered_seconds`)
    since the oldest was sent: one request a page of 200 instead of one a run. At most twice the pages the
    runs themselves fill, as other requests of the organization share the list; what is not found here is
    read on its own. Nothing when the list fails (each run is then read on its own)."""
    wanted = {run.run_id for run in due}
    since = min(run.reserved_at for run in due) - CLOCK_SLACK
    found: dict[str, RunBill] = {}
    cursor: str | None = None
    try:
        for _ in range(2 * math.ceil(len(due) / RUNS_PAGE_SIZE)):
            page = await deps.expression.runs_started_after(since, cursor)
            found.update({bill.run_id: bill for bill in page.runs if bill.run_id in wanted})
            cursor = page.next_cursor
            if cursor is None or len(found) == len(wanted):
                break
    except HumeError as exc:
        log.info("could not list Hume's runs; reading each", error=str(exc))
    return found


async def _read_one(deps: Deps, run: RunToRead, slots: asyncio.Semaphore, listed: RunBill | None) -> None:
    settings = deps.settings
    reads = run.tries + 1
    bill: RunBill | None = listed
    failure: HumeError | None = None
    if listed is None:
        async with slots:
            try:
                bill = await deps.expression.run_bill(run.run_id)
            except HumeError as exc:
                failure = exc
    async with deps.sessionmaker.begin() as session:
        if bill is not None and bill.final:
            await hume_usage.settle(session, run.usage_id, bill.metered_seconds)
            metrics.HUME_RUN_READS.labels(outcome="billed").inc()
            metrics.HUME_BILLED_SECONDS.labels(endpoint=run.medium, mode=bill.mode).inc(bill.metered_seconds)
        elif isinstance(failure, HumeTransientError):
            # Hume busy or unreachable says nothing about the run: not one of its tries.
            await hume_usage.read_later(session, run.usage_id, in_s=_retry_in(settings.hume_run_read_delay_s, reads),
                                        counted=False)  # fmt: skip
            metrics.HUME_RUN_READS.labels(outcome="failed").inc()
        elif reads >= settings.hume_run_read_tries:
            await hume_usage.keep_estimate(session, run.usage_id)
            metrics.HUME_RUN_READS.labels(outcome="estimate").inc()
            log.warning("hume run not billed as read; our estimate stands", run_id=run.run_id, reads=reads,
                        last=repr(failure) if failure else ("live" if bill else "not found"))  # fmt: skip
        else:
            await hume_usage.read_later(session, run.usage_id, in_s=_retry_in(settings.hume_run_read_delay_s, reads))
            metrics.HUME_RUN_READS.labels(outcome="failed" if failure else "late").inc()


async def read_billed(deps: Deps) -> None:
    """The queue task: read the billed seconds of every run due (HUME_RUN_READ_BATCH at a time), then queue
    itself again while runs wait."""
    settings = deps.settings
    slots = asyncio.Semaphore(READS_AT_ONCE)
    while True:
        async with deps.sessionmaker.begin() as session:
            due = await hume_usage.claim_runs(session, limit=settings.hume_run_read_batch, lease_s=READ_LEASE_S)
        listed = await _listed(deps, due) if len(due) >= LIST_FROM else {}
        await asyncio.gather(*(_read_one(deps, run, slots, listed.get(run.run_id)) for run in due))
        if len(due) < settings.hume_run_read_batch:
            break
    async with deps.sessionmaker.begin() as session:
        wait = await hume_usage.next_read_in(session)
        if wait is not None:
            await schedule_read(session, deps, in_s=min(wait, settings.hume_run_read_delay_s))


async def keep_reading(deps: Deps) -> int:
    """A reconciler check: when a run is due, a reader is queued unless one already waits (the queueing lock),
    so reading goes on even if the reader's chain of tasks ended (e.g. the database was away through every
    retry). A reader queued while another runs is harmless: each claims different runs."""
    async with deps.sessionmaker.begin() as session:
        wait = await hume_usage.next_read_in(session)
        if wait is None:
            return 0
        if wait == 0:
            await schedule_read(session, deps, in_s=0)
    return 1


async def report_unowned(deps: Deps) -> int:
    """A reconciler check, at most every HUME_UNOWNED_RUNS_INTERVAL_S (by any process): list the runs started in
    the last HUME_UNOWNED_RUNS_LOOKBACK_H (`started_after`, pages of 200, at most HUME_UNOWNED_RUNS_MAX_PAGES
    requests) and report those Hume billed that no request of ours was answered under: the gauge
    `hume_unowned_runs` and a log line naming them. Such runs are another system using the organization's
    key, or a request whose answer never reached us (its seconds are already counted as our estimate). A live
    session's run is ours from Hume's `session.created` on (app/usage/session_meter.py)."""
    settings = deps.settings
    if not settings.cloud_key:
        return 0  # no v1 key: nothing of ours can be billed, and Hume would refuse the list (401)
    async with deps.sessionmaker.begin() as session:
        if not await hume_usage.claim_check(session, UNOWNED_CHECK, every_s=settings.hume_unowned_runs_interval_s):
            return 0
    now = datetime.now(UTC)
    since = now - timedelta(hours=settings.hume_unowned_runs_lookback_h)
    judged_before = now - timedelta(seconds=settings.hume_unowned_runs_grace_s)
    runs: list[RunBill] = []
    cursor: str | None = None
    try:
        for _ in range(settings.hume_unowned_runs_max_pages):
            page = await deps.expression.runs_started_after(since, cursor)
            # HUME-V1-FACTS §6: a failed file request is billed 0; only runs that cost something matter here.
            runs += [r for r in page.runs if r.started_at <= judged_before and r.metered_seconds > 0]
            cursor = page.next_cursor
            if cursor is None:
                break
    except HumeError as exc:
        log.warning("could not list Hume's runs; the unowned-runs check runs again next period", error=str(exc))
        return 0
    async with deps.sessionmaker() as session:
        owned = await hume_usage.owned_runs(session, [r.run_id for r in runs])
    unowned = [r for r in runs if r.run_id not in owned]
    metrics.HUME_UNOWNED_RUNS.set(len(unowned))
    if unowned:
        log.warning(
            "hume runs no job owns", count=len(unowned), seconds=round(sum(r.metered_seconds for r in unowned), 3),
            run_ids=[r.run_id for r in unowned[:100]], since=since.isoformat(), every_page_read=cursor is None,
        )  # fmt: skip
    return len(runs)
