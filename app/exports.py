"""A job's predictions as CSV, streamed: one wide row per prediction, one column per emotion.

Shared by `GET /v1/jobs/{id}/predictions.csv` and `python -m app export`; rows come from a server-side
cursor and leave in chunks, so a one-hour job never sits in memory whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.store import queries

CHUNK_BYTES = 1 << 16


async def csv_chunks(
    sessionmaker: async_sessionmaker[AsyncSession], filt: queries.PredictionFilter, *, chunk_bytes: int = CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """The header, then every matching prediction in id order, as UTF-8 chunks of about `chunk_bytes`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    async with sessionmaker() as session:
        header, slots = await queries.csv_header(session, filt)
        writer.writerow(header)
        width = len(header) - len(queries.CSV_FIXED)
        async for r in queries.stream_rows(session, filt):
            wide: list[Any] = [""] * width
            for slot, score in zip(slots[r.model], r.scores, strict=False):
                if score is not None:
                    wide[slot] = repr(score)
            writer.writerow(
                [r.url, r.file, r.model, r.group_id, r.frame, r.time_begin, r.time_end, r.prob, r.text,
                 r.confidence, *wide]
            )  # fmt: skip
            if buffer.tell() >= chunk_bytes:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()
