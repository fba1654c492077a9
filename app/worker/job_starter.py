"""Starting a job on its backend (each backend registered in the pipeline by name): the queued `submit_job` task,
and the one way to enqueue it so that two runs for one job never overlap."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import JobContext
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Deps
from app.hume.errors import HumeTransientError
from app.inbox.pipeline import START_JOB
from app.store import jobs
from app.store.db import driver_connection
from app.worker.event_runner import last_attempt, task_deps
from app.worker.outbox import end_job

log = structlog.get_logger(__name__)

DEFAULT_BACKEND = "batch"
START_TASK_LOCK = "submit:"
"""The queueing lock of a job's start task is this and the job id: at most one waits per job."""


async def defer_start(session: AsyncSession, deps: Deps, job_id: uuid.UUID, *, in_s: float | None = None) -> bool:
    """Enqueue the job's start (in `in_s` seconds if given) unless one is already waiting; runs of one
    job never overlap, so the reconciler re-enqueueing a slow start cannot start two Hume jobs. True if
    enqueued."""
    connection = await driver_connection(session)
    task = deps.queue.configure_task(
        START_JOB, connection=connection, lock=f"job:{job_id}", queueing_lock=f"{START_TASK_LOCK}{job_id}",
        schedule_in=None if in_s is None else {"seconds": in_s},
    )  # fmt: skip
    try:
        # A savepoint on the connection the insert runs on (the session's, taken raw): the refused insert
        # must not abort the caller's transaction. The session's own begin_nested() left it aborted.
        async with connection.transaction():
            await task.defer_async(job_id=str(job_id))
    except AlreadyEnqueued:
        return False
    return True


async def submit_job(context: JobContext, job_id: str) -> None:
    deps = task_deps(context)
    our_id = uuid.UUID(job_id)
    async with deps.sessionmaker() as session:
        job = await jobs.get(session, our_id)
    if job is None:
        return
    backend = deps.pipeline.backends[job.backend or DEFAULT_BACKEND]
    try:
        await backend.start(deps, our_id)
    except Exception as exc:
        if not last_attempt(context, deps):
            raise
        # Out of tries: the job ends here, whatever went wrong, so nobody waits on a job nothing will move.
        if isinstance(exc, HumeTransientError):
            await backend.give_up(deps, our_id, str(exc))
        else:
            error = f"the job could not be run ({deps.settings.worker_max_attempts} tries): {type(exc).__name__}: {exc}"
            async with deps.sessionmaker.begin() as session:
                await end_job(session, deps, our_id, "failed", error_code="job_error", error=error)
        log.warning("job ended after its last try", job_id=job_id, error=f"{type(exc).__name__}: {exc}")


async def end_orphans(deps: Deps) -> int:
    """End jobs that wait on a start task that is gone (it failed outside the job's own handling, or was
    removed): nothing would ever move them. Returns how many were ended."""
    grace_s = max(deps.settings.stalled_after_s * 2, 60.0)
    async with deps.sessionmaker() as session:
        orphans = await jobs.without_start_task(session, START_TASK_LOCK, older_than_s=grace_s)
    ended = 0
    for job_id in orphans:
        async with deps.sessionmaker.begin() as session:
            ended += await end_job(session, deps, job_id, "failed", error_code="job_error",
                                   error="the job's start task ended without ending the job (it failed or was "
                                         "removed from the queue); see the worker's log")  # fmt: skip
    if ended:
        log.warning("jobs without a start task ended", count=ended)
    return ended
