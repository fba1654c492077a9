"""The batch backend's start: hand a pending job to Hume's batch API with our per-job callback URL."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from app.deps import Deps, JobBackend
from app.hume import catalog
from app.hume.errors import HumeNotFoundError, HumeRejectedError, HumeSunsetError
from app.store import jobs
from app.worker import outbox

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def callback_url(deps: Deps, job_id: uuid.UUID, token: str) -> str:
    return f"{deps.settings.callback_base_url}/v1/webhooks/hume/batch?job_id={job_id}&token={token}"


async def _reject(deps: Deps, job_id: uuid.UUID, error: str, code: str) -> None:
    async with deps.sessionmaker.begin() as session:
        await outbox.end_job(session, deps, job_id, "rejected", error=error, error_code=code)


async def send_to_hume(deps: Deps, job_id: uuid.UUID) -> None:
    """Start the Hume job for a pending job; transient Hume errors propagate for the worker to retry."""
    async with deps.sessionmaker.begin() as session:
        job = await jobs.lock(session, job_id)
        if job is None or job.status != "pending":
            return
        if catalog.retired_at_hume(catalog.BATCH, deps.settings):
            # Hume's own host: its batch API ended 2026-06-15 (HUME.md §0), so it is not asked at all. A compatible
            # server (HUME_VOICE_URL/HUME_BASE_URL) still is, below, and its 404/410 means the same.
            message = catalog.BATCH.retired_message()
            await outbox.end_job(session, deps, job_id, "rejected", error=message, error_code="hume_sunset")
            log.warning("batch job rejected: Hume's batch API is retired", job_id=str(job_id))
            return
        token = secrets.token_urlsafe(32)
        # Only the hash is kept; the token exists in clear text only in the URL handed to Hume.
        await jobs.touch(
            session, job_id, callback_token_hash=token_hash(token), submit_attempts=job.submit_attempts + 1
        )
        request: dict[str, Any] = dict(job.request)
    try:
        hume_job_id = await deps.gateway.start_job(
            urls=request.get("urls") or [],
            text=request.get("text") or [],
            models=request.get("models"),
            callback_url=callback_url(deps, job_id, token),
        )
    except (HumeRejectedError, HumeSunsetError, HumeNotFoundError) as exc:
        code = "hume_sunset" if isinstance(exc, HumeSunsetError) else "hume_rejected"
        await _reject(deps, job_id, str(exc), code)
        log.warning("job rejected by hume", job_id=str(job_id), error=str(exc))
        return
    async with deps.sessionmaker.begin() as session:
        moved = await jobs.advance(
            session,
            job_id,
            "queued",
            hume_job_id=hume_job_id,
            submitted_at=_now(),
            deadline_at=_now() + timedelta(seconds=deps.settings.reconcile_after_s),
        )
        if not moved:
            # The callback won the race and already finished the job: just record Hume's id.
            await jobs.touch(session, job_id, hume_job_id=hume_job_id)
    log.info("job submitted", job_id=str(job_id), hume_job_id=hume_job_id)


async def give_up_submit(deps: Deps, job_id: uuid.UUID, error: str) -> None:
    async with deps.sessionmaker.begin() as session:
        await outbox.end_job(
            session, deps, job_id, "failed", error=f"Hume unavailable: {error}", error_code="hume_unavailable"
        )


BACKEND = JobBackend(start=send_to_hume, give_up=give_up_submit)
