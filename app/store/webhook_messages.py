"""Webhook messages (the outbox) and their delivery attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.tables import WebhookAttempt, WebhookEndpoint, WebhookMessage

SNIPPET_BYTES = 500


async def add(
    session: AsyncSession,
    *,
    endpoint_id: uuid.UUID,
    job_id: uuid.UUID | None,
    event_type: str,
    payload: dict[str, Any],
) -> int:
    message = WebhookMessage(
        endpoint_id=endpoint_id,
        job_id=job_id,
        event_type=event_type,
        payload=payload,
        msg_id=f"msg_{uuid.uuid4().hex}",
        next_attempt_at=func.now(),
    )
    session.add(message)
    await session.flush()
    return message.id


async def get(session: AsyncSession, message_id: int) -> WebhookMessage | None:
    query = select(WebhookMessage).where(WebhookMessage.id == message_id)
    return (await session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()


async def lock(session: AsyncSession, message_id: int) -> WebhookMessage | None:
    """Serializes the delivery task, a manual retry and a replay touching one message."""
    query = select(WebhookMessage).where(WebhookMessage.id == message_id).with_for_update()
    return (await session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()


async def page(
    session: AsyncSession, endpoint_id: uuid.UUID, *, limit: int, before: int | None
) -> list[WebhookMessage]:
    """Newest first; `before` is the id of the last message of the previous page."""
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(WebhookMessage.id < before)
    return list((await session.execute(query.order_by(WebhookMessage.id.desc()).limit(limit))).scalars())


async def attempts(session: AsyncSession, message_id: int) -> list[WebhookAttempt]:
    query = select(WebhookAttempt).where(WebhookAttempt.message_id == message_id).order_by(WebhookAttempt.id)
    return list((await session.execute(query)).scalars())


def snippet(response: bytes) -> str | None:
    """What is kept of an answer: its first bytes as text (Postgres text holds no NUL)."""
    return response[:SNIPPET_BYTES].decode("utf-8", "replace").replace("\x00", "") or None


async def set_state(
    session: AsyncSession, message_id: int, state: str, *, attempts: int, next_attempt_at: datetime | None = None
) -> None:
    await session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id == message_id)
        .values(state=state, attempts=attempts, next_attempt_at=next_attempt_at)
    )


async def requeue_since(session: AsyncSession, since: datetime) -> list[int]:
    """Undelivered messages created since `since` on enabled endpoints, back to pending for a new round."""
    result = await session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.created_at >= since,
            WebhookMessage.state != "delivered",
            WebhookMessage.endpoint_id.in_(select(WebhookEndpoint.id).where(WebhookEndpoint.disabled_at.is_(None))),
        )
        .values(state="pending", attempts=0, next_attempt_at=func.now())
        .returning(WebhookMessage.id)
    )
    return sorted(result.scalars())


async def waiting(session: AsyncSession) -> int:
    query = select(func.count()).select_from(WebhookMessage).where(WebhookMessage.state == "pending")
    return int((await session.execute(query)).scalar_one())


_PRUNE = text(
    """
    DELETE FROM webhook_message WHERE id IN (
        SELECT id FROM webhook_message
         WHERE state IN ('delivered', 'failed') AND created_at < now() - make_interval(hours => :hours)
         LIMIT :batch
    )
    """
)


async def prune(session: AsyncSession, *, older_than_h: int, batch: int) -> int:
    """Delete up to `batch` ended messages (delivered or failed) created over `older_than_h` ago, with their
    attempts; pending ones stay whatever their age. Returns how many."""
    result = await session.execute(_PRUNE, {"hours": older_than_h, "batch": batch})
    return int(getattr(result, "rowcount", 0))
