"""Inbox events as operators see them: replay, and the safety net for events whose task vanished."""

from __future__ import annotations

import structlog

from app.deps import Deps
from app.errors import Conflict, NotFound
from app.inbox.acceptance import defer
from app.inbox.pipeline import PROCESS_EVENT, PROCESS_EVENTS
from app.store import inbox_events
from app.store.tables import InboxEvent

log = structlog.get_logger(__name__)


async def replay(deps: Deps, event_id: int) -> InboxEvent:
    """Process a stored event again (after a dead end or a fix). A done event is refused: its effect exists."""
    async with deps.sessionmaker.begin() as session:
        event = await inbox_events.get(session, event_id)
        if event is None:
            raise NotFound(f"no event {event_id}")
        if event.state == "done":
            raise Conflict(f"event {event_id} is already processed")
        if event.body_pruned_at is not None:
            raise Conflict(
                f"event {event_id}'s body was pruned at {event.body_pruned_at.isoformat()} (INBOX_BODY_RETENTION_H)"
            )
        if event.provider not in deps.pipeline.handlers:
            raise Conflict(f"event {event_id} comes from {event.provider!r}, which has no handler")
        reopened = await inbox_events.reopen(session, event_id)
        assert reopened is not None
        await defer(session, deps, PROCESS_EVENT, event_id=event_id)
    log.info("event replayed", event_id=event_id)
    return reopened


async def requeue_orphans(deps: Deps) -> int:
    """Events still `received` with no queue task left (its last try failed while the database was down)
    get a new task. Returns how many."""
    handlers = deps.pipeline.handlers
    async with deps.sessionmaker.begin() as session:
        events = await inbox_events.orphaned(
            session,
            tasks=(PROCESS_EVENT, PROCESS_EVENTS),
            older_than_s=max(deps.settings.stalled_after_s, 5.0),
        )
        requeued = [event.id for event in events if event.provider in handlers]
        for event_id in requeued:
            await defer(session, deps, PROCESS_EVENT, event_id=event_id)
    if requeued:
        log.warning("orphaned events requeued", events=requeued)
    return len(requeued)
