"""A job's predictions as CSV, streamed: one wide row per prediction, one column per emotion.

Shared by `GET /v1/jobs/{id}/predictions.csv` and `python -m app export`; rows leave in chunks as
Postgres produces them, so a one-hour job never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.store import queries

CHUNK_BYTES = 1 << 16


async def csv_chunks(
    sessionmaker: async_sessionmaker[AsyncSession], filt: queries.PredictionFilter, *, chunk_bytes: int = CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """The header, then every matching prediction in id order, as UTF-8 chunks of about `chunk_bytes`.

    Postgres writes the CSV (COPY ... TO STDOUT, one message a row); rows are regrouped into chunks so a
    response or a file gets a few large writes instead of one per prediction.
    """
    parts: list[bytes] = []
    size = 0
    async with sessionmaker() as session:
        async for block in queries.csv_copy(session, filt):
            parts.append(block)
            size += len(block)
            if size >= chunk_bytes:
                yield b"".join(parts)
                parts.clear()
                size = 0
    if parts:
        yield b"".join(parts)
