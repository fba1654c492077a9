"""The transactional outbox of our own webhooks: when a job ends, its messages are written and their
delivery tasks queued on the caller's session, so they commit (or roll back) with the job's end.

It lives below the features (each feature that ends jobs calls `end_job`; features never import each
other), and only writes rows and queues tasks: sending is the notifications feature's delivery task.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.job_status import FINAL
from app.core.metrics import JOBS_ENDED
from app.core.times import iso
from app.deps import Deps
from app.inbox.pipeline import DELIVER_MESSAGE
from app.store import inbox_events, jobs, webhook_endpoints, webhook_messages
from app.store.db import driver_connection
from app.store.tables import Job

JOB_EVENTS = ("job.completed", "job.failed", "job.rejected", "evi_chat.completed")
JOB_END_EVENTS = ("job.completed", "job.failed", "job.rejected")
"""What a job's notify_url hears (the end of that one job, whichever way it ended)."""
PING = "ping"


def event_type(job: Job) -> str | None:
    """The event a job's final status announces (None while it has not ended, or for a failed EVI chat)."""
    if job.kind == "evi_chat":
        return "evi_chat.completed" if job.status == "completed" else None
    if job.status in {"completed", "failed", "rejected"}:
        return f"job.{job.status}"
    return None


def job_body(deps: Deps, job: Job, kind: str) -> dict[str, Any]:
    """Small on purpose: facts and links, never the predictions."""
    base = f"{deps.settings.callback_base_url}/v1/jobs/{job.id}"
    summary: dict[str, Any] = {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "metadata": job.job_metadata,
        "num_predictions": job.num_predictions,
        "num_errors": job.num_errors,
        "created_at": iso(job.created_at),
        "completed_at": iso(job.completed_at),
        "error": {"code": job.error_code, "message": job.error} if job.error else None,
    }
    links = {"job": base, "summary": f"{base}/summary", "predictions": f"{base}/predictions"}
    if (job.request or {}).get("decisions"):
        links["answers"] = f"{base}/answers"  # Audio Decisions' answers, per window and question
    return envelope(kind, {"job": summary, "links": links})


def envelope(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": data}


async def queue_message(
    session: AsyncSession, deps: Deps, endpoint_id: uuid.UUID, kind: str, body: dict[str, Any], job_id: uuid.UUID | None
) -> int:
    """One message row, and its endpoint woken, on the caller's transaction."""
    message_id = await webhook_messages.add(
        session, endpoint_id=endpoint_id, job_id=job_id, event_type=kind, payload=body
    )
    await wake(deps, endpoint_id, session)
    return message_id


async def wake(deps: Deps, endpoint_id: uuid.UUID, session: AsyncSession | None = None) -> None:
    """Queue a delivery task for the endpoint's due messages (on `session`'s transaction, else at once),
    unless one already waits to start: the queueing lock keeps one waiting task per endpoint, which sends
    every message due when it runs, several at a time (app/notifications/delivery). A message retried
    later has a task of its own at its time (delivery.schedule), which also takes whatever else is due."""
    connection = None if session is None else await driver_connection(session)
    task = deps.queue.configure_task(
        DELIVER_MESSAGE, connection=connection, queueing_lock=f"webhook-endpoint:{endpoint_id}"
    )
    try:
        if connection is None:
            await task.defer_async(endpoint_id=str(endpoint_id))
        else:
            # A savepoint on the driver's connection (the one the defer runs on): the refused insert must not
            # abort the caller's transaction.
            async with connection.transaction():
                await task.defer_async(endpoint_id=str(endpoint_id))
    except AlreadyEnqueued:
        pass


async def add_notify_endpoint(session: AsyncSession, *, api_key_id: uuid.UUID, job_id: uuid.UUID, url: str) -> str:
    """The one-off endpoint of a job's notify_url, in the transaction that stores the job; its secret."""
    secret = webhook_endpoints.new_secret()
    await webhook_endpoints.create(
        session, api_key_id=api_key_id, url=url, events=list(JOB_END_EVENTS), description=f"notify_url of job {job_id}",
        secret=secret, job_id=job_id,
    )  # fmt: skip
    return secret


async def end_job(
    session: AsyncSession,
    deps: Deps,
    job_id: uuid.UUID,
    status: str,
    *,
    error: str | None = None,
    error_code: str | None = None,
    event_id: int | None = None,
    **fields: Any,
) -> bool:
    """The one way a job reaches a final status (completed, failed, rejected): the status moves only from a
    non-final one; its notifications are queued, the end counted (jobs_ended_total) and the inbox event that
    brought it (`event_id`) marked done, all in the caller's transaction. True if this call ended the job;
    the event is marked done either way (an end that lost a race is still that event's outcome)."""
    assert status in FINAL, status
    values = {"error": error, "error_code": error_code} if error is not None else {}
    fields.setdefault("completed_at", datetime.now(UTC))
    moved = await jobs.advance(session, job_id, status, **values, **fields)
    if moved:
        job = await jobs.current(session, job_id)
        if job is not None:
            await _announce(session, deps, job)
            JOBS_ENDED.labels(job.kind, status).inc()
    if event_id is not None:
        await inbox_events.finish(session, event_id, "done")
    return moved


async def _announce(session: AsyncSession, deps: Deps, job: Job) -> int:
    """Queue the ended job's message for every subscribed endpoint; how many were queued."""
    kind = event_type(job)
    if kind is None:
        return 0
    endpoints = await webhook_endpoints.subscribed(session, kind, job.api_key_id, job.id)
    if not endpoints:
        return 0
    body = job_body(deps, job, kind)
    for endpoint_id in endpoints:
        await queue_message(session, deps, endpoint_id, kind, body, job.id)
    return len(endpoints)
