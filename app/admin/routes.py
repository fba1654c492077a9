"""Operators: the inbox's events (dead ones above all) and replaying them. Scope: admin."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.admin.schemas import Event, EventListQuery, EventPage
from app.api.auth import authorize
from app.api.params import ascii_int, path_id
from app.api.responses import JSON, deps
from app.api.typed_input import query_struct
from app.errors import InvalidInput
from app.inbox import replay as events
from app.store import inbox_events as inbox
from app.store.inbox_events import EventSummary


def event_out(event: EventSummary) -> Event:
    return Event(
        id=event.id,
        provider=event.provider,
        dedup_key=event.dedup_key,
        event_type=event.event_type,
        job_id=event.job_id,
        state=event.state,  # type: ignore[arg-type]  # the table's CHECK holds the same values
        attempts=event.attempts,
        last_error=event.last_error,
        received_at=event.received_at,
        processed_at=event.processed_at,
        body_bytes=event.body_bytes,
        body_pruned_at=event.body_pruned_at,
    )


def _int(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    value = ascii_int(raw)
    if value is None or not 0 < value < 2**63:
        raise InvalidInput(name, "not a cursor returned by this API")
    return value


async def list_events(request: Request) -> Response:
    await authorize(request, "admin")
    query = query_struct(request, EventListQuery)
    after = _int(query.cursor, "cursor")
    async with deps(request).sessionmaker() as session:
        rows = await inbox.page(session, state=query.state, limit=query.limit + 1, after_id=after)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return JSON(EventPage(items=[event_out(e) for e in rows], next_cursor=str(rows[-1].id) if more else None))


async def replay_event(request: Request) -> Response:
    await authorize(request, "admin")
    event_id = path_id(request, "event_id", "event")
    event = await events.replay(deps(request), event_id)
    return JSON(event_out(inbox.summary(event)), status_code=202)


routes = [
    Route("/v1/admin/events", list_events, methods=["GET"]),
    Route("/v1/admin/events/{event_id}/replay", replay_event, methods=["POST"]),
]
