"""The periodic safety net: tasks whose worker died are requeued, events whose task vanished get a new
one, jobs whose start task is gone are ended `failed`, and every feature's registered check runs (overdue
batch jobs are polled, stuck starts resubmitted). Hourly, `prune` keeps the tables from growing for good: old
finished queue tasks and old ended webhook messages are deleted, and old processed events lose their bodies
(each after its own retention setting); predictions get this and next month's partitions made ahead for every
tenant, and lose the months past their tenant's retention (whole partitions dropped)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from procrastinate import JobContext

from app.deps import Deps
from app.inbox import replay
from app.store import inbox_events, prediction_partitions, webhook_messages
from app.worker import job_starter
from app.worker.event_runner import task_deps

log = structlog.get_logger(__name__)


async def reconcile(context: JobContext, timestamp: int) -> None:
    deps = task_deps(context)
    # Jobs whose worker died mid-run (no heartbeat) go back to the queue: procrastinate's recipe.
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=deps.settings.stalled_after_s))
    for stalled_job in stalled:
        if stalled_job.id != (context.job.id if context.job else None):
            await manager.retry_job(stalled_job)
    orphans = await replay.requeue_orphans(deps)
    ended = await job_starter.end_orphans(deps)
    looked_at = 0
    for check in deps.pipeline.checks:
        looked_at += await check(deps)
    if looked_at or stalled or orphans or ended:
        log.info("reconciled", looked_at=looked_at, stalled_requeued=len(stalled), orphans_requeued=orphans,
                 jobs_without_task_ended=ended)  # fmt: skip


PRUNE_BATCH = 500
"""Rows pruned per transaction: a batch callback's body can be tens of MB."""


async def prune(context: JobContext, timestamp: int) -> None:
    """Delete tasks that ended (succeeded, failed, cancelled, aborted) over QUEUE_RETENTION_H ago, with their
    procrastinate events (unpruned, every delivery and event left three rows behind for good); empty the
    bodies of inbox events processed over INBOX_BODY_RETENTION_H ago; delete our webhooks' ended messages
    older than WEBHOOK_LOG_RETENTION_H; make prediction partitions ahead and drop the months past
    PREDICTION_RETENTION_DAYS (or the tenant's own)."""
    deps = task_deps(context)
    settings = deps.settings
    await context.app.job_manager.delete_old_jobs(
        nb_hours=settings.queue_retention_h, include_failed=True, include_cancelled=True, include_aborted=True
    )
    emptied = await _in_batches(deps, inbox_events.prune_bodies, settings.inbox_body_retention_h)
    deleted = await _in_batches(deps, webhook_messages.prune, settings.webhook_log_retention_h)
    if emptied or deleted:
        log.info("pruned", inbox_bodies_emptied=emptied, webhook_messages_deleted=deleted)
    async with deps.db.connection() as conn:
        upkeep = await prediction_partitions.upkeep(conn, default_days=settings.prediction_retention_days)
    if upkeep.made or upkeep.dropped or upkeep.failed:
        # A tenant in `failed` waited past the lock timeout (a long query on its predictions): tried next hour.
        log.info("prediction partitions", made=upkeep.made, dropped=upkeep.dropped, expired_jobs=upkeep.expired_jobs,
                 not_done_for=upkeep.failed)  # fmt: skip


async def _in_batches(deps: Deps, step: Callable[..., Awaitable[int]], older_than_h: int) -> int:
    """`step` in transactions of PRUNE_BATCH rows until one finds fewer; nothing when the retention is 0."""
    total = 0
    while older_than_h:
        async with deps.sessionmaker.begin() as session:
            done = await step(session, older_than_h=older_than_h, batch=PRUNE_BATCH)
        total += done
        if done < PRUNE_BATCH:
            break
    return total
