"""What endpoint registrations and updates must satisfy beyond their structs' types and limits (known event
types, a URL we may call, no NUL): every refusal is a 422 naming the field."""

from __future__ import annotations

from dataclasses import dataclass

from msgspec import UnsetType

from app.api.receiver_url import checked_receiver_url
from app.egress.url_guard import UrlGuard
from app.errors import InvalidInput
from app.notifications.schemas import MAX_DESCRIPTION, EndpointIn, EndpointPatch
from app.worker.outbox import JOB_EVENTS


@dataclass(frozen=True)
class EndpointInput:
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    disabled: bool | None = None


def checked_events(value: list[str]) -> list[str]:
    if not value:
        raise InvalidInput("events", f"must be a non-empty list of event types ({', '.join(JOB_EVENTS)})")
    unknown = sorted(set(value) - set(JOB_EVENTS))
    if unknown:
        raise InvalidInput("events", f"unknown event types {', '.join(unknown)}; known: {', '.join(JOB_EVENTS)}")
    return sorted(set(value))


def _description(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise InvalidInput("description", f"must be a string of at most {MAX_DESCRIPTION} characters")
    return value


async def new_endpoint(given: EndpointIn, guard: UrlGuard) -> EndpointInput:
    events = checked_events(given.events) if given.events is not None else list(JOB_EVENTS)
    return EndpointInput(
        url=await checked_receiver_url(given.url, guard),
        events=events,
        description=_description(given.description),
    )


async def endpoint_update(given: EndpointPatch, guard: UrlGuard) -> EndpointInput:
    return EndpointInput(
        url=None if isinstance(given.url, UnsetType) else await checked_receiver_url(given.url, guard),
        events=None if isinstance(given.events, UnsetType) else checked_events(given.events),
        description=_description(given.description),
        disabled=given.disabled,
    )
