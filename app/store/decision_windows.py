"""Which windows of a decision job are answered: what a resumed run skips. A window is answered once its
answers are stored: `decisions.store_answers` claims it in `decision_window` in the same transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Served by decision_window's primary key (job_id, source_index, window_index).
_ANSWERED = text("SELECT source_index, window_index FROM decision_window WHERE job_id = :job_id")


async def answered(session: AsyncSession, job_id: uuid.UUID) -> dict[int, set[int]]:
    """Source index -> the indexes of its answered windows."""
    by_source: dict[int, set[int]] = {}
    for source, window in await session.execute(_ANSWERED, {"job_id": job_id}):
        by_source.setdefault(source, set()).add(window)
    return by_source
