"""EVI chats in the job table: one job per chat, by Hume's chat id (created by the webhook intake)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.tables import Job

KIND = "evi_chat"


async def existing_chat_job(session: AsyncSession, chat_id: str) -> uuid.UUID | None:
    """The chat's job if one exists; never creates one."""
    found = await session.execute(select(Job.id).where(Job.kind == KIND, Job.hume_job_id == chat_id))
    return found.scalar_one_or_none()
