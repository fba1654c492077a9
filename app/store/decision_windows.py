"""Which windows of a decision job are answered: what a resumed run skips. A window counts as answered once
any of its answers is stored (they are stored together, in one transaction a window)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Served by the primary key (job_id, source_index, window_index, question_id).
_ANSWERED = text("SELECT DISTINCT source_index, window_index FROM decision_answer WHERE job_id = :job_id")


async def answered(session: AsyncSession, job_id: uuid.UUID) -> dict[int, set[int]]:
    """Source index -> the indexes of its answered windows."""
    by_source: dict[int, set[int]] = {}
    for source, window in await session.execute(_ANSWERED, {"job_id": job_id}):
        by_source.setdefault(source, set()).add(window)
    return by_source
