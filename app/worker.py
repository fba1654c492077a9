"""The queue: procrastinate tasks for submission, event processing and the reconciler.

Tasks read their dependencies from the worker's `additional_context["deps"]`, so the same task code runs
in the server process and in `python -m app worker`.
"""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate
import structlog
from procrastinate import JobContext, RetryDecision
from procrastinate.jobs import Job as QueueJob
from procrastinate.retry import BaseRetryStrategy

from app import evi_chats
from app import jobs as job_service
from app.config import libpq_url
from app.deps import Deps
from app.hume.errors import HumeTransientError
from app.store import inbox

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 8
BASE_WAIT_S = 2.0
MAX_WAIT_S = 300.0


class Backoff(BaseRetryStrategy):
    """Exponential backoff with a cap; a Retry-After from Hume wins when it asks for longer."""

    def __init__(self, *, max_attempts: int, base_s: float, cap_s: float) -> None:
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.cap_s = cap_s

    def get_retry_decision(self, *, exception: BaseException, job: QueueJob) -> RetryDecision | None:
        if job.attempts + 1 >= self.max_attempts:
            return None
        wait = min(self.base_s * (2**job.attempts), self.cap_s)
        if isinstance(exception, HumeTransientError) and exception.retry_after is not None:
            wait = max(wait, min(exception.retry_after, self.cap_s))
        return RetryDecision(retry_in={"seconds": wait})


RETRY = Backoff(max_attempts=MAX_ATTEMPTS, base_s=BASE_WAIT_S, cap_s=MAX_WAIT_S)


def _deps(context: JobContext) -> Deps:
    deps = context.additional_context["deps"]
    assert isinstance(deps, Deps)
    return deps


def _last_attempt(context: JobContext) -> bool:
    job = context.job
    return job is not None and job.attempts + 1 >= MAX_ATTEMPTS


async def submit_job(context: JobContext, job_id: str) -> None:
    deps = _deps(context)
    try:
        await job_service.send_to_hume(deps, uuid.UUID(job_id))
    except HumeTransientError as exc:
        if _last_attempt(context):
            await job_service.give_up_submit(deps, uuid.UUID(job_id), str(exc))
            return
        raise


async def process_event(context: JobContext, event_id: int) -> None:
    deps = _deps(context)
    try:
        outcome = await job_service.process_event(deps, event_id)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        last = _last_attempt(context)
        async with deps.sessionmaker.begin() as session:
            attempts = await inbox.record_attempt(session, event_id, error)
            if last:
                # Out of retries: the event stays visible as dead until someone replays it.
                await inbox.mark(session, event_id, "dead", error=error)
        log.warning(
            "event processing failed", event_id=event_id, attempts=attempts, error=error, dead=last, exc_info=True
        )
        if last:
            return
        raise
    log.info("event processed", event_id=event_id, outcome=outcome)


async def reconcile(context: JobContext, timestamp: int) -> None:
    deps = _deps(context)
    looked_at = await job_service.reconcile(deps)
    # Jobs whose worker died mid-run (no heartbeat) go back to the queue: procrastinate's recipe.
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs())
    for stalled_job in stalled:
        await manager.retry_job(stalled_job)
    if looked_at or stalled:
        log.info("reconciled", jobs_polled=looked_at, stalled_requeued=len(stalled))


def make_queue(database_url: str) -> procrastinate.App:
    """A procrastinate app with our tasks; one per process (tests build several)."""
    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(database_url), min_size=1, max_size=4)
    app = procrastinate.App(connector=connector)
    app.task(name="submit_job", pass_context=True, retry=RETRY)(submit_job)
    app.task(name="process_event", pass_context=True, retry=RETRY)(process_event)
    app.task(name="process_evi_event", pass_context=True, retry=RETRY)(evi_chats.process_event_task)
    app.periodic(cron="* * * * * */15", periodic_id="reconcile")(
        app.task(name="reconcile", pass_context=True, queueing_lock="reconcile")(reconcile)
    )
    return app


def worker_options(deps: Deps, *, install_signal_handlers: bool = False) -> dict[str, Any]:
    return {
        "concurrency": deps.settings.worker_concurrency,
        "additional_context": {"deps": deps},
        "install_signal_handlers": install_signal_handlers,
        "shutdown_graceful_timeout": 10,
        "wait": True,
    }
