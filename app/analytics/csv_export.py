"""A job's predictions as CSV, streamed: one wide row per prediction, one column per emotion.

Shared by `GET /v1/jobs/{id}/predictions.csv` and `python -m app export`; rows leave in chunks as
Postgres produces them, so a one-hour job never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.store import analytics as queries

CHUNK_BYTES = 1 << 16


async def csv_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    filt: queries.PredictionFilter,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    statement_timeout_s: float | None = None,
) -> AsyncIterator[bytes]:
    """The header, then every matching prediction in id order, as UTF-8 chunks of about `chunk_bytes`.

    Postgres writes the CSV (COPY ... TO STDOUT, one message a row); rows are regrouped into chunks so a
    response or a file gets a few large writes instead of one per prediction.
    """
    parts: list[bytes] = []
    size = 0
    async with sessionmaker() as session:
        if statement_timeout_s is not None:
            # The database's own backstop: an export cannot hold its connection past this, whatever we do.
            ms = int(statement_timeout_s * 1000)
            await session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            await session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {ms}"))
        async for block in queries.csv_copy(session, filt):
            parts.append(block)
            size += len(block)
            if size >= chunk_bytes:
                yield b"".join(parts)
                parts.clear()
                size = 0
    if parts:
        yield b"".join(parts)
