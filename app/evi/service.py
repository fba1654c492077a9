"""EVI chats: Hume's signed webhooks in, each chat stored as a job of kind `evi_chat` with its prosody.

A delivery is verified over its raw bytes, then in ONE transaction the chat's job is found or created,
the event goes into the inbox under a unique key (`evi:{chat_id}:{event_name}`) and a task is deferred.
The task applies the event: `chat_started` records the chat's details, `chat_ended` pulls the chat's
events from EVI's history API and, under the job's row lock, stores the predictions and completes the
job in one transaction. A replay finds its key taken; a late `chat_started` only fills in details it
does not overwrite; a completed chat is never touched again. Backfill routes listed chats through the
same inbox key, so a webhook and a backfill of one chat store it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from hume.empathic_voice.types import WebhookEventChatEnded, WebhookEventChatStarted, WebhookEventToolCall

from app.api.json_limits import parse_storable
from app.core import metrics
from app.core.job_status import FINAL
from app.core.times import from_ms
from app.deps import Deps
from app.errors import InvalidInput, Unauthorized
from app.hume import catalog, signatures
from app.hume import evi_chats as evi
from app.hume.errors import HumeError, HumeSunsetError
from app.inbox.acceptance import Accepted, store_and_queue
from app.inbox.pipeline import PROCESS_EVENTS, RetryLater
from app.store import chat_jobs, inbox_events, ingest, jobs
from app.store.tables import InboxEvent
from app.worker import outbox
from app.worker.event_runner import finish_event, run_event

log = structlog.get_logger(__name__)

PROVIDER = "hume_evi"
BACKFILL_PROVIDER = "evi_backfill"
PROVIDERS = (PROVIDER, BACKFILL_PROVIDER)


def check_headers(deps: Deps, headers: Mapping[str, str], now: float) -> None:
    """What can be verified before the body is read (see signatures.check_headers)."""
    settings = deps.settings
    try:
        signatures.check_headers(
            headers, keys=settings.webhook_signing_keys, now=now, tolerance_s=settings.hume_webhook_tolerance_s
        )
    except signatures.WebhookVerificationError as exc:
        raise Unauthorized(f"webhook signature verification failed: {exc}") from None


async def accept_webhook(deps: Deps, *, body: bytes, headers: Mapping[str, str], now: float) -> Accepted:
    """Verify, then store the event and enqueue its processing in one transaction."""
    settings = deps.settings
    try:
        signatures.verify(
            body, headers, keys=settings.webhook_signing_keys, now=now, tolerance_s=settings.hume_webhook_tolerance_s
        )
    except signatures.WebhookVerificationError as exc:
        raise Unauthorized(f"webhook signature verification failed: {exc}") from None
    # Signed is not storable: a NUL (Postgres text cannot hold one) or absurd nesting would fail later.
    data = parse_storable(body)
    try:
        event = evi.parse_webhook(data)
    except evi.EviPayloadError as exc:
        raise InvalidInput("body", str(exc)) from None
    kept = {name: v for k, v in headers.items() if (name := k.lower()) in _KEPT_HEADERS}
    event_id = await _store(deps, event, body, kept, provider=PROVIDER)
    return Accepted(event_id, {"chat_id": event.chat_id, "event_name": evi.event_name(event)})


# Worth keeping with an event for audit; never Authorization or cookies.
_KEPT_HEADERS = frozenset(
    {"content-type", "user-agent", signatures.SIGNATURE_HEADER.lower(), signatures.TIMESTAMP_HEADER.lower()}
)


async def _store(
    deps: Deps, event: evi.WebhookEvent, body: bytes, headers: dict[str, str], *, provider: str
) -> int | None:
    """The new inbox event's id, or None when this event is already stored (a replay)."""
    name = evi.event_name(event)
    if not isinstance(event, evi.UnknownEvent):
        return await deps.intake.store_chat_event(
            chat_id=event.chat_id, provider=provider, dedup_key=evi.dedup_key(event, body), event_type=name,
            headers=headers, body=body, task=PROCESS_EVENTS,
        )  # fmt: skip
    async with deps.sessionmaker.begin() as session:
        # An unknown event is kept for audit only: it joins its chat's job if there is one, but never
        # creates a job that nothing would ever end, and is not queued.
        event_id = await store_and_queue(
            session,
            deps,
            provider=provider,
            dedup_key=evi.dedup_key(event, body),
            event_type=name,
            job_id=await chat_jobs.existing_chat_job(session, event.chat_id),
            headers=headers,
            body=body,
            queue=False,
        )
        if event_id is not None:
            await inbox_events.finish(session, event_id, "ignored", f"unknown EVI event {name!r}: stored only")
    return event_id


async def handle_event(deps: Deps, stored: InboxEvent) -> str:
    """Apply one stored EVI event; returns what happened (for logs). Each path reads the chat's job under
    its row lock, in the transaction that writes it."""
    event_id = stored.id
    if stored.job_id is None:
        return await finish_event(deps, event_id, "ignored", "chat job no longer exists")
    event = evi.parse_webhook(stored.body)
    if isinstance(event, WebhookEventChatStarted):
        return await _started(deps, stored.job_id, event_id, event)
    if isinstance(event, WebhookEventChatEnded):
        return await _ended(deps, stored.job_id, event_id, event)
    if isinstance(event, WebhookEventToolCall):
        return await finish_event(deps, event_id, "done", None)
    return await finish_event(deps, event_id, "ignored", "unknown EVI event")


async def _started(deps: Deps, job_id: uuid.UUID, event_id: int, event: WebhookEventChatStarted) -> str:
    async with deps.db.connection() as connection:
        started = await chat_jobs.start_chat(
            connection, job_id, event_id, evi.started_details(event), from_ms(event.start_time)
        )
    return "chat started" if started else "job gone"


async def _ended(deps: Deps, job_id: uuid.UUID, event_id: int, event: WebhookEventChatEnded) -> str:
    # The end (when, why, how long) is recorded before Hume is asked for the history, so it shows on
    # the job while EVI's history is not ready or Hume is unreachable and the task retries.
    async with deps.sessionmaker.begin() as session:
        job = await jobs.lock(session, job_id)
        if job is None:
            await inbox_events.finish(session, event_id, "ignored", "chat job no longer exists")
            return "job gone"
        if job.status in FINAL:
            await inbox_events.finish(session, event_id, "ignored", f"chat already {job.status}")
            return "duplicate"
        await chat_jobs.fill_details(session, job_id, evi.ended_details(event))
    if catalog.retired_at_hume(catalog.EVI, deps.settings):
        # An archived chat_ended replayed after 2026-11-13: Hume's EVI (and its chat history) is gone, so asking
        # would only fail. The event goes dead naming why; the chat's job keeps what it has.
        raise HumeSunsetError(catalog.EVI.retired_message())
    # Hume is called outside any transaction: no row lock is held across the network.
    history = await deps.evi.chat_history(event.chat_id)
    if history.status == "ACTIVE":
        raise RetryLater(f"EVI still reports chat {event.chat_id} as ACTIVE")
    rows, errors = evi.prediction_rows(history)
    record = ingest.SourceRecord(
        kind="evi_chat",
        file_errors=errors,
        files=[
            {"chat_id": history.chat_id, "events": len(history.events), "event_types": evi.event_counts(history.events)}
        ],
    )
    end_ms = event.end_time or history.end_ms
    with metrics.INGEST_SECONDS.time():
        async with deps.sessionmaker.begin() as session:
            job = await jobs.lock(session, job_id)
            if job is None or job.status in FINAL:
                await inbox_events.finish(session, event_id, "ignored", "chat already final")
                return "duplicate"
            count = await ingest.ingest(session, job_id, [record], rows)
            # The webhook's details first, then what the history adds (neither overwrites what is known).
            await chat_jobs.fill_details(session, job_id, evi.ended_details(event))
            history_details = {"chat_group_id": history.chat_group_id, "config_id": history.config_id,
                               "start_time_ms": history.start_ms, "end_time_ms": history.end_ms}  # fmt: skip
            await chat_jobs.fill_details(session, job_id, history_details)
            await outbox.end_job(
                session, deps, job_id, "completed", num_predictions=count, num_errors=len(errors),
                started_at=job.started_at or from_ms(history.start_ms),
                completed_at=from_ms(end_ms) or datetime.now(UTC),
                event_id=event_id,
            )  # fmt: skip
    metrics.INGEST_ROWS.inc(count)
    log.info("evi chat ingested", job_id=str(job_id), chat_id=event.chat_id, predictions=count)
    return "completed"


@dataclass(frozen=True)
class Backfill:
    listed: int
    ingested: list[str]
    already_stored: list[str]
    active: list[str]
    failed: dict[str, str]


async def backfill(deps: Deps, *, since: datetime, progress: Callable[[int, int], object] | None = None) -> Backfill:
    """Ingest chats that started since `since` and are not stored yet, through the same inbox key a
    chat_ended webhook uses (so a webhook arriving later, or earlier, is a replay). `progress(done, total)`
    is called after each chat. With Hume's own host (EVI retired 2026-11-13) it raises HumeSunsetError, uncalled."""
    if catalog.retired_at_hume(catalog.EVI, deps.settings):
        raise HumeSunsetError(catalog.EVI.retired_message())
    chats = await deps.evi.chats_since(int(since.timestamp() * 1000))
    ingested: list[str] = []
    stored: list[str] = []
    active: list[str] = []
    failed: dict[str, str] = {}
    for done, chat in enumerate(chats):
        if progress is not None:
            progress(done, len(chats))
        if chat.status == "ACTIVE":
            active.append(chat.chat_id)
            continue
        body = evi.ended_body(chat)
        event = evi.parse_webhook(body)
        event_id = await _store(deps, event, body, {}, provider=BACKFILL_PROVIDER)
        if event_id is None:
            async with deps.sessionmaker() as session:
                event_id = await inbox_events.id_by_key(session, evi.dedup_key(event, body))
        assert event_id is not None
        try:
            outcome = await run_event(deps, event_id)
        except (HumeError, RetryLater) as exc:
            failed[chat.chat_id] = str(exc)
            continue
        (ingested if outcome == "completed" else stored).append(chat.chat_id)
    if progress is not None:
        progress(len(chats), len(chats))
    return Backfill(listed=len(chats), ingested=ingested, already_stored=stored, active=active, failed=failed)
