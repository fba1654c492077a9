"""Times as Hume writes them (Unix milliseconds) and as our JSON writes them (ISO 8601), converted in one place."""

from __future__ import annotations

from datetime import UTC, datetime


def from_ms(ms: int | None) -> datetime | None:
    """A Unix-milliseconds timestamp (Hume's batch states and EVI events), None for absent or 0."""
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with its offset, None for absent: every timestamp our JSON answers and webhooks carry."""
    return value.isoformat() if value else None
