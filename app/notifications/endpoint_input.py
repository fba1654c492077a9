"""Validation of endpoint registrations and updates: every refusal is a 422 naming the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.api.receiver_url import checked_receiver_url
from app.egress.url_guard import UrlGuard
from app.errors import InvalidInput
from app.inbox.outbox import JOB_EVENTS

MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class EndpointInput:
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    disabled: bool | None = None


def checked_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInput("events", f"must be a non-empty list of event types ({', '.join(JOB_EVENTS)})")
    unknown = sorted(set(value) - set(JOB_EVENTS))
    if unknown:
        raise InvalidInput("events", f"unknown event types {', '.join(unknown)}; known: {', '.join(JOB_EVENTS)}")
    return sorted(set(value))


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise InvalidInput("description", f"must be a string of at most {MAX_DESCRIPTION} characters")
    return value


def _only(data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise InvalidInput(extra[0], f"is not a field of this request (known: {', '.join(sorted(allowed))})")


async def new_endpoint(data: dict[str, Any], guard: UrlGuard) -> EndpointInput:
    _only(data, {"url", "events", "description"})
    if "url" not in data:
        raise InvalidInput("url", "is required")
    events = checked_events(data["events"]) if data.get("events") is not None else list(JOB_EVENTS)
    return EndpointInput(
        url=await checked_receiver_url(data["url"], guard),
        events=events,
        description=_description(data.get("description")),
    )


async def endpoint_update(data: dict[str, Any], guard: UrlGuard) -> EndpointInput:
    _only(data, {"url", "events", "description", "disabled"})
    disabled = data.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise InvalidInput("disabled", "must be true or false")
    return EndpointInput(
        url=await checked_receiver_url(data["url"], guard) if "url" in data else None,
        events=checked_events(data["events"]) if "events" in data else None,
        description=_description(data.get("description")),
        disabled=disabled,
    )
