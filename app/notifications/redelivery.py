"""Sending messages again: one now (the retry route), every undelivered one since a time (the replay
command); and the waiting-messages gauge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core import metrics
from app.deps import Deps
from app.errors import Conflict, NotFound
from app.inbox.acceptance import defer
from app.inbox.pipeline import DELIVER_MESSAGE
from app.store import webhook_delivery_rows, webhook_endpoints, webhook_messages
from app.store.tables import WebhookMessage
from app.worker.outbox import wake


async def retry_now(deps: Deps, message_id: int, owner: uuid.UUID | None) -> WebhookMessage:
    """Start a new round of attempts for one message, whatever its state; 409 if its endpoint is disabled."""
    async with deps.sessionmaker.begin() as session:
        message = await webhook_messages.lock(session, message_id)
        endpoint = await webhook_endpoints.get(session, message.endpoint_id) if message else None
        if message is None or endpoint is None or (owner is not None and endpoint.api_key_id != owner):
            raise NotFound("unknown webhook message")
        if endpoint.disabled_at is not None:
            raise Conflict(f"the endpoint is disabled ({endpoint.disabled_reason}); enable it with PATCH first")
        await webhook_messages.set_state(session, message_id, "pending", attempts=0, next_attempt_at=datetime.now(UTC))
        await defer(session, deps, DELIVER_MESSAGE, message_id=message_id)
        refreshed = await webhook_messages.get(session, message_id)
    assert refreshed is not None
    return refreshed


@dataclass(frozen=True)
class Replay:
    queued: list[int]


async def replay_since(deps: Deps, since: datetime) -> Replay:
    """Every message created since `since` that was not delivered (on enabled endpoints), sent again."""
    async with deps.sessionmaker.begin() as session:
        ids = await webhook_messages.requeue_since(session, since)
        for message_id in ids:
            await defer(session, deps, DELIVER_MESSAGE, message_id=message_id)
    return Replay(queued=ids)


OVERDUE_AFTER_S = 2.0
"""A pending message due this long ago has no task on its way (or waits behind a backlog, where the woken
endpoint's one waiting task absorbs the wake-up)."""
WAKE_AT_MOST = 500
"""Endpoints woken a reconciler pass (each wake is a round trip; the rest wait for the next pass)."""


async def count_waiting(deps: Deps) -> int:
    """A reconciler check: refreshes the messages-waiting gauge, and wakes every endpoint with a message
    overdue: one a dead worker had claimed comes due again when its lease ends, with no task of its own
    (a task that raised is retried by the queue, a stalled one requeued by procrastinate)."""
    async with deps.sessionmaker() as session:
        waiting = await webhook_messages.waiting(session)
    metrics.WEBHOOK_MESSAGES_WAITING.set(waiting)
    if waiting:
        async with deps.db.pool.connection() as connection:
            overdue = await webhook_delivery_rows.overdue_endpoints(
                connection, after_s=OVERDUE_AFTER_S, limit=WAKE_AT_MOST
            )
        for endpoint_id in overdue:
            await wake(deps, endpoint_id)
    return waiting
