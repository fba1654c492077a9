"""A job's predictions as CSV, streamed: one wide row per prediction, one column per emotion.

Shared by `GET /v1/jobs/{id}/predictions.csv` and `python -m app export`; rows leave in chunks as
Postgres produces them, so a one-hour job never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.store import analytics
from app.store.db import EXPORT_CHUNK_BYTES, copy_out_chunks

CHUNK_BYTES = EXPORT_CHUNK_BYTES


async def csv_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    filt: analytics.PredictionFilter,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    statement_timeout_s: float | None = None,
) -> AsyncIterator[bytes]:
    """The header, then every matching prediction in id order, as UTF-8 chunks of about `chunk_bytes`.

    Postgres writes the CSV (COPY ... TO STDOUT, one message a row); rows are regrouped into chunks so a
    response or a file gets a few large writes instead of one per prediction.
    """
    chunks = copy_out_chunks(
        sessionmaker, lambda session: analytics.csv_copy(session, filt), chunk_bytes=chunk_bytes,
        statement_timeout_s=statement_timeout_s,
    )  # fmt: skip
    async for chunk in chunks:
        yield chunk
