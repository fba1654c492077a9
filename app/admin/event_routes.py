"""Operators: the inbox's events (dead ones above all) and replaying them. Scope: admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.request_helpers import JSON, authorize, deps, query_int
from app.errors import InvalidInput, NotFound
from app.inbox import replay as events
from app.store import inbox_events as inbox
from app.store.inbox_events import EventSummary
from app.store.tables import EVENT_STATES


def event_json(event: EventSummary) -> dict[str, Any]:
    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": event.id,
        "provider": event.provider,
        "dedup_key": event.dedup_key,
        "event_type": event.event_type,
        "job_id": str(event.job_id) if event.job_id else None,
        "state": event.state,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "received_at": ts(event.received_at),
        "processed_at": ts(event.processed_at),
        "body_bytes": event.body_bytes,
    }


def _int(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, "not a cursor returned by this API") from None
    if not 0 < value < 2**63:
        raise InvalidInput(name, "not a cursor returned by this API")
    return value


async def list_events(request: Request) -> Response:
    await authorize(request, "admin")
    state = request.query_params.get("state")
    if state is not None and state not in EVENT_STATES:
        raise InvalidInput("state", f"must be one of {', '.join(EVENT_STATES)}")
    limit = query_int(request, "limit", 50, low=1, high=500)
    after = _int(request.query_params.get("cursor"), "cursor")
    async with deps(request).sessionmaker() as session:
        rows = await inbox.page(session, state=state, limit=limit + 1, after_id=after)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSON({"items": [event_json(e) for e in rows], "next_cursor": str(rows[-1].id) if more else None})


async def replay_event(request: Request) -> Response:
    await authorize(request, "admin")
    try:
        event_id = int(request.path_params["event_id"])
    except ValueError:
        raise NotFound("unknown event") from None
    if not 0 < event_id < 2**63:
        raise NotFound("unknown event")
    event = await events.replay(deps(request), event_id)
    return JSON(event_json(inbox.summary(event)), status_code=202)


routes = [
    Route("/v1/admin/events", list_events, methods=["GET"]),
    Route("/v1/admin/events/{event_id}/replay", replay_event, methods=["POST"]),
]
