"""Webhook endpoints: registration, ownership, secret rotation, disabling, and who subscribes to an event."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, any_, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.api_keys import DEFAULT_TENANT
from app.store.tables import ApiKey, WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


async def create(
    session: AsyncSession,
    *,
    api_key_id: uuid.UUID,
    url: str,
    events: list[str],
    description: str | None,
    secret: str,
    job_id: uuid.UUID | None = None,
) -> WebhookEndpoint:
    """`job_id` makes a one-off endpoint (a job's notify_url) that hears that job only."""
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(), api_key_id=api_key_id, url=url, events=events, description=description, secret=secret,
        job_id=job_id,
    )  # fmt: skip
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def get(
    session: AsyncSession, endpoint_id: uuid.UUID, *, owner: uuid.UUID | None = None
) -> WebhookEndpoint | None:
    """The endpoint, if it exists and (when `owner` is given) belongs to that API key."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if owner is not None:
        query = query.where(WebhookEndpoint.api_key_id == owner)
    return (await session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()


async def owned_by(session: AsyncSession, owner: uuid.UUID | None) -> list[WebhookEndpoint]:
    """Every endpoint of one key (None: every endpoint), oldest first."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    if owner is not None:
        query = query.where(WebhookEndpoint.api_key_id == owner)
    return list((await session.execute(query)).scalars())


async def change(session: AsyncSession, endpoint_id: uuid.UUID, **fields: Any) -> None:
    await session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**fields))


async def remove(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


async def rotate(session: AsyncSession, endpoint_id: uuid.UUID, *, secret: str, overlap_until: datetime) -> None:
    """The new secret signs from now on; the current one keeps signing alongside it until `overlap_until`."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(previous_secret=WebhookEndpoint.secret, previous_secret_expires_at=overlap_until, secret=secret)
    )


async def disable(session: AsyncSession, endpoint_id: uuid.UUID, reason: str) -> bool:
    """True when this call disabled it (it was enabled)."""
    result = await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
        .values(disabled_at=func.now(), disabled_reason=reason)
        .returning(WebhookEndpoint.id)
    )
    return result.first() is not None


async def subscribed(
    session: AsyncSession, event_type: str, job_owner: uuid.UUID | None, job_id: uuid.UUID
) -> list[uuid.UUID]:
    """Enabled endpoints that want `event_type` for a job submitted by `job_owner`: the submitting key's own
    endpoints, and those of the global admin keys (which see every job, EVI chats included), plus the job's
    own notify_url endpoint; another job's notify_url endpoint never. Revoked keys get nothing. An `admin` key
    stored with a tenant is not global (api_keys.Principal.grants): it hears its own jobs only."""
    query = (
        select(WebhookEndpoint.id)
        .join(ApiKey, ApiKey.id == WebhookEndpoint.api_key_id)
        .where(
            WebhookEndpoint.disabled_at.is_(None),
            ApiKey.revoked_at.is_(None),
            literal(event_type) == any_(WebhookEndpoint.events),
            or_(
                WebhookEndpoint.job_id == job_id,
                and_(
                    WebhookEndpoint.job_id.is_(None),
                    or_(
                        and_(WebhookEndpoint.api_key_id == job_owner) if job_owner is not None else False,
                        and_(literal("admin") == any_(ApiKey.scopes), ApiKey.tenant == DEFAULT_TENANT),
                    ),
                ),
            ),
        )
        .order_by(WebhookEndpoint.id)
    )
    return list((await session.execute(query)).scalars())
