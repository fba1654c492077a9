"""The admin API as declared: the event list's query and an inbox event as returned."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.api.typed_input import QueryStruct

# The inbox table's CHECK holds the same values (tests/unit/test_openapi.py compares them).
EventState = Literal["received", "processing", "done", "dead", "ignored"]
MAX_PAGE = 500


class EventListQuery(QueryStruct):
    state: EventState | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Meta(description="next_cursor of the previous page")] | None = None


class Event(msgspec.Struct):
    """A stored webhook delivery (or poll outcome) and what became of it."""

    id: int
    provider: str
    dedup_key: str
    event_type: str
    job_id: uuid.UUID | None
    state: EventState
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    body_bytes: int
    body_pruned_at: datetime | None = None
    """Set once the body of this processed event was emptied (INBOX_BODY_RETENTION_H); it cannot be replayed."""


class EventPage(msgspec.Struct):
    items: list[Event]
    next_cursor: str | None
