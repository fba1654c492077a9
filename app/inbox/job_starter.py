"""Starting a job on its backend (batch today; v1 plugs in the same way): the queued `submit_job` task,
and the one way to enqueue it so that two runs for one job never overlap."""

from __future__ import annotations

import uuid

from procrastinate import JobContext
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Deps
from app.hume.errors import HumeTransientError
from app.inbox.event_runner import last_attempt, task_deps
from app.inbox.pipeline import START_JOB, pipeline
from app.store import jobs
from app.store.db import driver_connection

DEFAULT_BACKEND = "batch"


async def defer_start(session: AsyncSession, deps: Deps, job_id: uuid.UUID, *, in_s: float | None = None) -> bool:
    """Enqueue the job's start (in `in_s` seconds if given) unless one is already waiting; runs of one
    job never overlap, so the reconciler re-enqueueing a slow start cannot start two Hume jobs. True if
    enqueued."""
    connection = await driver_connection(session)
    task = deps.queue.configure_task(
        START_JOB, connection=connection, lock=f"job:{job_id}", queueing_lock=f"submit:{job_id}",
        schedule_in=None if in_s is None else {"seconds": in_s},
    )  # fmt: skip
    try:
        # A savepoint: the refused insert must not abort the caller's transaction.
        async with session.begin_nested():
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
    backend = pipeline(deps).backends[job.backend or DEFAULT_BACKEND]
    try:
        await backend.start(deps, our_id)
    except HumeTransientError as exc:
        if last_attempt(context, deps):
            await backend.give_up(deps, our_id, str(exc))
            return
        raise
