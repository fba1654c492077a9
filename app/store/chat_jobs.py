"""EVI chats in the job table: one job per chat, found or created by Hume's chat id."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.tables import InboxEvent, Job

KIND = "evi_chat"


async def chat_job(session: AsyncSession, chat_id: str) -> uuid.UUID:
    """The id of the chat's job, created (in progress) if this is the first we hear of the chat.

    ON CONFLICT on the (kind, hume_job_id) constraint: two first deliveries racing create one job.
    """
    created = await session.execute(
        insert(Job)
        .values(id=uuid.uuid4(), kind=KIND, status="in_progress", hume_job_id=chat_id)
        .on_conflict_do_nothing(index_elements=[Job.kind, Job.hume_job_id])
        .returning(Job.id)
    )
    job_id = created.scalar_one_or_none()
    if job_id is not None:
        return job_id
    existing = await existing_chat_job(session, chat_id)
    assert existing is not None
    return existing


async def existing_chat_job(session: AsyncSession, chat_id: str) -> uuid.UUID | None:
    """The chat's job if one exists; never creates one."""
    found = await session.execute(select(Job.id).where(Job.kind == KIND, Job.hume_job_id == chat_id))
    return found.scalar_one_or_none()


async def event_id(session: AsyncSession, dedup_key: str) -> int | None:
    result = await session.execute(select(InboxEvent.id).where(InboxEvent.dedup_key == dedup_key))
    return result.scalar_one_or_none()


async def settle(session: AsyncSession, event_id: int, state: str, note: str | None) -> None:
    """Mark an event finished unless a racing run already marked it done: its outcome is the true one."""
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == event_id, InboxEvent.state != "done")
        .values(state=state, last_error=note, processed_at=func.now())
    )
