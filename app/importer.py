"""Import a Hume predictions document (e.g. downloaded before the sunset) as a completed job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.deps import Deps
from app.hume import predictions
from app.store import ingest, jobs


async def import_document(deps: Deps, document: bytes, *, url: str | None, name: str) -> tuple[uuid.UUID, int]:
    sources = predictions.decode(document)
    records = []
    for s in sources:
        source_url = s.source.url or (url if s.source.type == "url" else None)
        records.append(
            ingest.SourceRecord(
                kind=s.source.type, url=source_url, filename=s.source.filename,
                content_type=s.source.content_type, md5sum=s.source.md5sum, error=s.error,
                file_errors=predictions.file_errors(s), files=predictions.source_files(s),
            )
        )  # fmt: skip
    now = datetime.now(UTC)
    async with deps.sessionmaker.begin() as session:
        job = await jobs.create(
            session, kind="batch", status="completed", request={"imported_from": name},
            job_metadata={"imported": True}, completed_at=now, submitted_at=now,
        )  # fmt: skip
        count = await ingest.ingest(session, job.id, records, predictions.rows(sources))
        num_errors = sum(len(r.file_errors) + (1 if r.error else 0) for r in records)
        await jobs.touch(session, job.id, num_predictions=count, num_errors=num_errors)
    return job.id, count
