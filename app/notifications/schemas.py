"""The shapes of our outbound-webhook API: the routes decode requests into these structs and answer with
them, and /openapi.json is generated from the same structs."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app.api.params import MAX_ID
from app.api.typed_input import QueryStruct

EventType = Annotated[str, Meta(description="job.completed, job.failed, job.rejected, evi_chat.completed (or ping)")]
MAX_DESCRIPTION = 500
Description = Annotated[str, Meta(max_length=MAX_DESCRIPTION)]


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, Meta(description="http(s); private and loopback addresses refused unless ALLOW_PRIVATE_HOSTS")]
    events: Annotated[list[EventType], Meta(min_length=1)] | None = None
    """None (or absent): every job event."""
    description: Description | None = None


class EndpointPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Absent fields stay as they are; url and events cannot be null."""

    url: str | UnsetType = UNSET
    events: Annotated[list[EventType], Meta(min_length=1)] | UnsetType = UNSET
    description: Description | None = None
    disabled: bool | None = None


class EndpointOut(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    description: str | None
    disabled: bool
    disabled_at: str | None
    disabled_reason: str | None
    failing_since: str | None
    previous_secret_expires_at: str | None
    created_at: str | None
    job_id: Annotated[str | None, Meta(description="a job's notify_url endpoint: it hears that job only")] = None
    secret: Annotated[str, Meta(description="whsec_...; only when created or rotated")] | UnsetType = UNSET


class EndpointPage(msgspec.Struct):
    items: list[EndpointOut]


class PingQueued(msgspec.Struct):
    message_id: int
    type: str


class MessageOut(msgspec.Struct):
    id: int
    msg_id: Annotated[str, Meta(description="the webhook-id header: the same on every attempt")]
    endpoint_id: str
    job_id: str | None
    type: str
    state: str
    attempts: int
    next_attempt_at: str | None
    created_at: str | None
    payload: dict[str, Any]


class MessagePage(msgspec.Struct):
    items: list[MessageOut]
    next_before: int | None


class MessageQuery(QueryStruct):
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    before: Annotated[int, Meta(ge=1, le=MAX_ID, description="next_before of the previous page")] | None = None


class AttemptOut(msgspec.Struct):
    at: str | None
    status_code: int | None
    response: Annotated[str, Meta(description="the first 500 bytes of the receiver's answer")] | None
    duration_ms: int
    error: str | None


class AttemptPage(msgspec.Struct):
    message: MessageOut
    items: list[AttemptOut]
