"""The one task runner for stored events: look up the provider's handler, run it, and apply the one retry
and dead-letter policy (every failure recorded on the event; out of tries or a permanent error: dead)."""

from __future__ import annotations

import structlog
from procrastinate import JobContext

from app.deps import Deps
from app.store import inbox_events

log = structlog.get_logger(__name__)


def task_deps(context: JobContext) -> Deps:
    deps = context.additional_context["deps"]
    assert isinstance(deps, Deps)
    return deps


def last_attempt(context: JobContext, deps: Deps) -> bool:
    job = context.job
    return job is not None and job.attempts + 1 >= deps.settings.worker_max_attempts


async def finish_event(deps: Deps, event_id: int, state: str, note: str | None) -> str:
    """End an event by one statement of its own, for a handler with nothing else to write; what happened."""
    async with deps.db.connection() as connection:
        await inbox_events.end(connection, event_id, state, note)
    return note or state


async def run_event(deps: Deps, event_id: int) -> str:
    """Apply one stored event with its provider's handler; what happened, for logs. Failures propagate."""
    async with deps.db.connection() as connection:
        event = await inbox_events.read(connection, event_id)
    if event is None or event.state in {"done", "ignored"}:
        return "already processed"
    handler = deps.pipeline.handlers.get(event.provider)
    if handler is None:
        return await finish_event(deps, event_id, "ignored", f"no handler for provider {event.provider!r}")
    return await handler(deps, event)


async def process_event(context: JobContext, event_id: int) -> None:
    deps = task_deps(context)
    try:
        outcome = await run_event(deps, event_id)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        dead = last_attempt(context, deps) or isinstance(exc, deps.pipeline.permanent)
        async with deps.sessionmaker.begin() as session:
            attempts = await inbox_events.record_attempt(session, event_id, error)
            if dead:
                # Out of retries: the event stays visible as dead until someone replays it.
                await inbox_events.finish(session, event_id, "dead", error)
        log.warning("event processing failed", event_id=event_id, attempts=attempts, error=error, dead=dead)
        if dead:
            return
        raise
    log.info("event processed", event_id=event_id, outcome=outcome)
