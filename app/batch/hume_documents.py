"""Hume's batch predictions documents as the store's neutral source records (batch callbacks, polls and
`python -m app import` all read the same format)."""

from __future__ import annotations

from collections.abc import Sequence

from app.hume import predictions
from app.store.ingest import SourceRecord


def source_records(
    sources: Sequence[predictions.SourceResult], *, default_url: str | None = None
) -> list[SourceRecord]:
    """What the source table keeps of each element of Hume's array: where it came from and what failed."""
    return [
        SourceRecord(
            kind=s.source.type,
            url=s.source.url or (default_url if s.source.type == "url" else None),
            filename=s.source.filename,
            content_type=s.source.content_type,
            md5sum=s.source.md5sum,
            error=s.error,
            file_errors=predictions.file_errors(s),
            files=predictions.source_files(s),
        )
        for s in sources
    ]
