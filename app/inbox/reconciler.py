"""The periodic safety net: tasks whose worker died are requeued, events whose task vanished get a new
one, and every feature's registered check runs (overdue batch jobs are polled, stuck starts resubmitted).
Hourly, finished tasks older than QUEUE_RETENTION_H are deleted, so the queue's tables stay small, and the
bodies of events processed over INBOX_BODY_RETENTION_H ago are emptied."""

from __future__ import annotations

import structlog
from procrastinate import JobContext

from app.inbox import replay
from app.inbox.event_runner import task_deps
from app.inbox.pipeline import pipeline
from app.store import inbox_events

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
    looked_at = 0
    for check in pipeline(deps).checks:
        looked_at += await check(deps)
    if looked_at or stalled or orphans:
        log.info("reconciled", looked_at=looked_at, stalled_requeued=len(stalled), orphans_requeued=orphans)


PRUNE_BATCH = 500
"""Inbox bodies emptied per transaction: a batch callback's body can be tens of MB."""


async def prune(context: JobContext, timestamp: int) -> None:
    """Delete tasks that ended (succeeded, failed, cancelled, aborted) over QUEUE_RETENTION_H ago, with their
    procrastinate events (unpruned, every delivery and event left three rows behind for good); and empty
    the bodies of inbox events processed over INBOX_BODY_RETENTION_H ago."""
    deps = task_deps(context)
    settings = deps.settings
    await context.app.job_manager.delete_old_jobs(
        nb_hours=settings.queue_retention_h, include_failed=True, include_cancelled=True, include_aborted=True
    )
    emptied = 0
    while settings.inbox_body_retention_h:
        async with deps.sessionmaker.begin() as session:
            done = await inbox_events.prune_bodies(
                session, older_than_h=settings.inbox_body_retention_h, batch=PRUNE_BATCH
            )
        emptied += done
        if done < PRUNE_BATCH:
            break
    if emptied:
        log.info("inbox bodies pruned", events=emptied, older_than_h=settings.inbox_body_retention_h)
