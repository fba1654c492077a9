"""Import a Hume predictions document (e.g. downloaded before the sunset) as a completed job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.batch.hume_documents import source_records
from app.hume import predictions
from app.store import ingest, jobs


async def import_document(
    sessionmaker: async_sessionmaker[AsyncSession], document: bytes, *, url: str | None, name: str
) -> tuple[uuid.UUID, int]:
    """Store the document's sources and predictions as one completed job; (job id, prediction count).

    `url` names the media when a URL source does not (Hume always echoes it; hand-edited files may not).
    """
    sources = predictions.decode(document)
    records = source_records(sources, default_url=url)
    now = datetime.now(UTC)
    async with sessionmaker.begin() as session:
        job = await jobs.create(
            session, kind="batch", status="completed", request={"imported_from": name},
            job_metadata={"imported": True}, completed_at=now, submitted_at=now,
        )  # fmt: skip
        count = await ingest.ingest(session, job.id, records, predictions.rows(sources))
        await jobs.touch(session, job.id, num_predictions=count, num_errors=ingest.error_count(records))
    return job.id, count
