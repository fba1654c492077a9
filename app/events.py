"""Inbox events as operators see them: list, replay, and the safety net for events whose task vanished."""

from __future__ import annotations

import structlog

from app import evi_chats
from app.deps import Deps, defer
from app.errors import Conflict, NotFound
from app.store import inbox
from app.store.tables import InboxEvent

log = structlog.get_logger(__name__)

# Which task applies an event, by the provider that stored it.
TASKS = {
    "hume_batch": "process_event",
    "poll": "process_event",
    "hume_evi": evi_chats.TASK,
    "evi_backfill": evi_chats.TASK,
}


async def replay(deps: Deps, event_id: int) -> InboxEvent:
    """Process a stored event again (after a dead end or a fix). A done event is refused: its effect exists."""
    async with deps.sessionmaker.begin() as session:
        event = await inbox.get(session, event_id)
        if event is None:
            raise NotFound(f"no event {event_id}")
        if event.state == "done":
            raise Conflict(f"event {event_id} is already processed")
        task = TASKS.get(event.provider)
        if task is None:
            raise Conflict(f"event {event_id} comes from {event.provider!r}, which has no processing task")
        reopened = await inbox.reopen(session, event_id)
        assert reopened is not None
        await defer(session, deps.queue, task, event_id=event_id)
    log.info("event replayed", event_id=event_id, task=task)
    return reopened


async def requeue_orphans(deps: Deps) -> int:
    """Events still `received` with no queue task left (its last try failed while the database was down)
    get a new task. Returns how many."""
    async with deps.sessionmaker.begin() as session:
        events = await inbox.orphaned(
            session, tasks=tuple(set(TASKS.values())), older_than_s=max(deps.settings.stalled_after_s, 5.0)
        )
        for event in events:
            if event.provider in TASKS:
                await defer(session, deps.queue, TASKS[event.provider], event_id=event.id)
    if events:
        log.warning("orphaned events requeued", events=[e.id for e in events])
    return len(events)
