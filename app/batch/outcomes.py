"""The batch backend's outcomes: Hume's callbacks accepted, overdue jobs polled, and every outcome applied
exactly once.

Every path that learns a job ended (callback, poll, replay) goes through `handle_event`, which confirms
the state with Hume's API and then, under the job's row lock, stores predictions and marks the job done
in one transaction. A second delivery finds the job final and does nothing.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime, timedelta

import structlog

from app.batch.hume_documents import source_records
from app.batch.submission import token_hash
from app.core import metrics
from app.core.job_status import FINAL
from app.core.prediction_rows import PredictionFormatError
from app.core.times import from_ms
from app.deps import Deps
from app.errors import BadPayload, NotFound, Unauthorized
from app.hume import callbacks, predictions
from app.hume.callbacks import CallbackFormatError
from app.hume.errors import HumeError, HumeNotFoundError, HumeSunsetError
from app.hume.gateway import JobState
from app.inbox.acceptance import Accepted, defer, store_and_queue
from app.inbox.pipeline import PROCESS_EVENT, PROCESS_EVENTS, RetryLater
from app.store import inbox_events, ingest, jobs
from app.store.tables import InboxEvent, Job
from app.store.webhook_intake import CallbackTarget
from app.worker import outbox
from app.worker.event_runner import finish_event
from app.worker.job_starter import defer_start

log = structlog.get_logger(__name__)

PROVIDERS = ("hume_batch", "poll")
# Hume calls back when a job ends; nothing else is a callback.
CALLBACK_STATUSES = frozenset({"COMPLETED", "FAILED"})
# A dead outcome event is revived by a poll at most this many rounds of retries in all.
_REVIVE_ROUNDS = 3


def dedup_key(hume_job_id: str | None, status: str) -> str:
    """The inbox key of a batch job's outcome: a callback, an oversized callback's stand-in and a poll that
    found the same end are one event, whichever arrives first."""
    return f"batch:{hume_job_id}:{status}"


def _now() -> datetime:
    return datetime.now(UTC)


async def check_callback(deps: Deps, *, job_id: str | None, token: str | None) -> CallbackTarget:
    """The job a callback URL names, verified by its per-job secret BEFORE any of the body is read: a
    stranger's post costs one indexed lookup, never the memory of its body."""
    if not job_id or not token:
        raise Unauthorized("callback URL lacks job_id or token")
    try:
        our_id = uuid.UUID(job_id)
    except ValueError:
        raise NotFound("unknown job") from None
    job = await deps.intake.callback_target(our_id)
    if job is None or job.kind != "batch":
        raise NotFound("unknown job")
    if job.callback_token_hash is None or not hmac.compare_digest(job.callback_token_hash, token_hash(token)):
        raise Unauthorized("callback token does not match this job")
    return job


async def accept_callback(deps: Deps, job: CallbackTarget, *, body: bytes, headers: dict[str, str]) -> Accepted:
    """Store a verified callback (see check_callback) and enqueue its processing, in one transaction: an
    event is stored if and only if its task is."""
    # Parsed only once the sender is known: a stranger learns nothing from our parser.
    try:
        hume_job_id, status = callbacks.head(body)
    except CallbackFormatError as exc:
        raise BadPayload(str(exc)) from None
    if status not in CALLBACK_STATUSES:
        raise BadPayload(f"status must be COMPLETED or FAILED, got {status!r}")
    if job.hume_job_id is not None and job.hume_job_id != hume_job_id:
        raise Unauthorized("callback is for another Hume job")
    event_id = await deps.intake.store(
        provider="hume_batch",
        dedup_key=dedup_key(hume_job_id, status),
        event_type=status,
        job_id=job.job_id,
        headers=headers,
        body=body,
        task=PROCESS_EVENTS,
    )
    return Accepted(event_id, {"hume_job_id": hume_job_id, "status": status, "bytes": len(body)})


async def accept_oversized(deps: Deps, job: CallbackTarget, *, headers: dict[str, str]) -> Accepted:
    """A verified callback too large to hold: a callback is only a hint confirmed with Hume's API, so a
    small poll-style event takes its place and the handler fetches the predictions from the API at once."""
    if job.hume_job_id is None:
        raise BadPayload("callback too large, and the job has no Hume id yet to fetch it by")
    body = callbacks.encode_poll(job.hume_job_id, "COMPLETED")
    event_id = await deps.intake.store(
        provider="hume_batch",
        dedup_key=dedup_key(job.hume_job_id, "COMPLETED"),
        event_type="COMPLETED",
        job_id=job.job_id,
        headers={**headers, "x-body-too-large": "fetch predictions from the API"},
        body=body,
        task=PROCESS_EVENTS,
    )
    return Accepted(event_id, {"hume_job_id": job.hume_job_id, "status": "COMPLETED", "oversized": True})


async def record_poll_outcome(deps: Deps, job: Job, state: JobState) -> None:
    """A poll found the job ended: route it through the inbox, exactly like a callback."""
    body = callbacks.encode_poll(job.hume_job_id or "", state.status)
    key = dedup_key(job.hume_job_id, state.status)
    async with deps.sessionmaker.begin() as session:
        event_id = await store_and_queue(
            session,
            deps,
            provider="poll",
            dedup_key=key,
            event_type=state.status,
            job_id=job.id,
            headers={},
            body=body,
        )
        if event_id is None:
            # This outcome is already stored, but may have gone dead (Hume unreachable through every
            # retry, or the callback came before Hume's API agreed): Hume now says the job ended, so it
            # is tried again instead of leaving the job waiting forever. Bounded: a truly broken event
            # stays dead after a few rounds (replay is then the operator's call).
            event_id = await inbox_events.revive_dead(
                session, key, max_attempts=_REVIVE_ROUNDS * deps.settings.worker_max_attempts
            )
            if event_id is not None:
                log.warning("dead event revived by a poll", event_id=event_id, job_id=str(job.id))
                await defer(session, deps, PROCESS_EVENT, event_id=event_id)


async def handle_event(deps: Deps, event: InboxEvent) -> str:
    """Apply one stored batch outcome (callback or poll); returns what happened (for logs)."""
    event_id, job_id = event.id, event.job_id
    found = None
    if job_id is not None:
        async with deps.db.connection() as connection:
            found = await jobs.status_and_hume_id(connection, job_id)
    if job_id is None or found is None:
        return await finish_event(deps, event_id, "ignored", "job no longer exists")
    status, known_hume_id = found
    if status in FINAL:
        return await finish_event(deps, event_id, "ignored", f"job already {status}")
    payload = callbacks.full(event.body)
    hume_job_id = known_hume_id or payload.job_id
    state = await deps.gateway.job_state(hume_job_id)
    if state.status == "COMPLETED":
        sources = callback_sources(payload, event_id)
        if sources is None:
            sources = predictions.decode(await deps.gateway.predictions(hume_job_id))
        return await _complete(deps, job_id, event_id, hume_job_id, state, sources)
    if state.status == "FAILED":
        message = state.message or payload.message or payload.error or "Hume reported the job failed"
        async with deps.sessionmaker.begin() as session:
            await outbox.end_job(
                session, deps, job_id, "failed", hume_job_id=hume_job_id, error=message, error_code="hume_failed",
                started_at=from_ms(state.started_ms), completed_at=from_ms(state.ended_ms) or _now(),
                event_id=event_id,
            )  # fmt: skip
        return "failed"
    if state.status == "IN_PROGRESS":
        async with deps.sessionmaker.begin() as session:
            await jobs.advance(session, job_id, "in_progress", started_at=from_ms(state.started_ms))
    # Hume says the job has not ended: the callback is early or forged; ask again later.
    raise RetryLater(f"Hume reports job {hume_job_id} as {state.status}")


def callback_sources(payload: callbacks.BatchCallback, event_id: int) -> list[predictions.SourceResult] | None:
    """The predictions a completed job's callback carries, decoded in place (no copy of a body that can be
    hundreds of MB); None when it carries none or they are unreadable (then Hume's API is asked)."""
    if (payload.status or "COMPLETED").upper() != "COMPLETED" or not predictions.is_present(payload.predictions):
        return None
    try:
        return predictions.decode(payload.predictions)
    except PredictionFormatError as exc:
        # A damaged delivery must not sink the job (it would go dead, and every poll after it
        # would find its key taken): Hume's API has the same predictions intact.
        log.warning("callback predictions unreadable; fetching them", event_id=event_id, error=str(exc))
        return None


async def _complete(
    deps: Deps,
    job_id: uuid.UUID,
    event_id: int,
    hume_job_id: str,
    state: JobState,
    sources: list[predictions.SourceResult],
) -> str:
    records = source_records(sources)
    num_errors = ingest.error_count(records)
    with metrics.INGEST_SECONDS.time():
        async with deps.sessionmaker.begin() as session:
            job = await jobs.lock(session, job_id)
            if job is None or job.status in FINAL:
                await inbox_events.finish(session, event_id, "ignored", "job already final")
                return "duplicate"
            count = await ingest.ingest(session, job_id, records, predictions.rows(sources))
            await outbox.end_job(
                session, deps, job_id, "completed", hume_job_id=hume_job_id, num_predictions=count,
                num_errors=num_errors, started_at=from_ms(state.started_ms),
                completed_at=from_ms(state.ended_ms) or _now(),
                event_id=event_id,
            )  # fmt: skip
    metrics.INGEST_ROWS.inc(count)
    log.info("job ingested", job_id=str(job_id), hume_job_id=hume_job_id, predictions=count)
    return "completed"


async def poll_overdue(deps: Deps) -> int:
    """Poll jobs whose callback is overdue; resubmit stuck pending ones. Returns how many were looked at."""
    async with deps.sessionmaker() as session:
        due = await jobs.due_for_reconcile(session)
    for job_id in due:
        async with deps.sessionmaker.begin() as session:
            job = await jobs.get(session, job_id)
            if job is None:
                continue
            polls = int((job.details or {}).get("polls", 0)) + 1
            # Back off: a long job is polled less and less often, never more than once per hour.
            wait = min(deps.settings.reconcile_after_s * (2 ** min(polls, 6)), 3600.0)
            await jobs.touch(
                session, job_id, deadline_at=_now() + timedelta(seconds=wait), details={**job.details, "polls": polls}
            )
            if job.status == "pending":
                await defer_start(session, deps, job_id)
                continue
        if job.hume_job_id is None:
            continue
        try:
            state = await deps.gateway.job_state(job.hume_job_id)
        except (HumeSunsetError, HumeNotFoundError) as exc:
            # Hume accepted this job, so a 404/410 now means its batch API is gone: waiting cannot help.
            message = f"Hume answered {exc.status} for job {job.hume_job_id}. {HumeSunsetError()}"
            async with deps.sessionmaker.begin() as session:
                await outbox.end_job(
                    session, deps, job_id, "failed", error=" ".join(message.split()), error_code="hume_sunset"
                )
            log.warning("job failed: Hume no longer knows it", job_id=str(job_id), status=exc.status)
            continue
        except HumeError as exc:
            log.warning("reconcile poll failed", job_id=str(job_id), error=str(exc))
            continue
        if state.status in {"COMPLETED", "FAILED"}:
            await record_poll_outcome(deps, job, state)
        elif state.status == "IN_PROGRESS":
            async with deps.sessionmaker.begin() as session:
                await jobs.advance(session, job_id, "in_progress", started_at=from_ms(state.started_ms))
    return len(due)
