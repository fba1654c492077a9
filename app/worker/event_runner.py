"""The one task runner for stored events: look up the provider's handler, run it, and apply the one retry
and dead-letter policy (every failure recorded on the event; out of tries or a permanent error: dead)."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from procrastinate import JobContext

from app.deps import Deps
from app.inbox.acceptance import defer
from app.inbox.pipeline import PROCESS_EVENT
from app.store import inbox_events
from app.worker.backoff import Backoff

log = structlog.get_logger(__name__)


def task_deps(context: JobContext) -> Deps:
    deps = context.additional_context["deps"]
    assert isinstance(deps, Deps)
    return deps


def last_attempt(context: JobContext, deps: Deps, tried: int = 0) -> bool:
    """Whether this run is the task's last try; `tried`: tries the event had before this task."""
    job = context.job
    return job is not None and tried + job.attempts + 1 >= deps.settings.worker_max_attempts


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


async def process_event(context: JobContext, event_id: int, tried: int = 0) -> None:
    """Apply one event; `tried`: how many tries it had before this task (one, handed on by process_events),
    so an event gets WORKER_MAX_ATTEMPTS tries in all."""
    deps = task_deps(context)
    try:
        outcome = await run_event(deps, event_id)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        dead = last_attempt(context, deps, tried) or isinstance(exc, deps.pipeline.permanent)
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


async def process_events(context: JobContext, event_ids: Sequence[int]) -> None:
    """The events one intake statement stored, queued as one task: a task each cost Postgres a row, a
    notification and CPU at intake, and the worker a fetch and a finish per event (under wrk, with the
    in-process worker on, it settled 2.4x as many events a second batched, while acknowledging 10% more
    deliveries). They are applied one at a time, as a task slot always applied one event:
    WORKER_CONCURRENCY still bounds the events in flight, which the pools are sized by (8 at once per task
    starved the acknowledgements' pool). Each is applied as `process_event` applies it; one that fails is
    recorded and handed to a `process_event` task of its own with the same retries, so it neither holds the
    others back for its backoff nor makes them run again. Only when even that hand-off fails (the database
    away) does this task fail, and its retry skips the events already applied."""
    deps = task_deps(context)
    for event_id in event_ids:
        try:
            outcome = await run_event(deps, event_id)
        except Exception as exc:
            await _hand_off(deps, event_id, exc)
            continue
        log.info("event processed", event_id=event_id, outcome=outcome)


async def _hand_off(deps: Deps, event_id: int, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"
    dead = isinstance(exc, deps.pipeline.permanent) or deps.settings.worker_max_attempts <= 1
    # The first retry waits as procrastinate's would after a task's first failure.
    wait_s = Backoff.from_settings(deps.settings).wait_s(0, exc)
    async with deps.sessionmaker.begin() as session:
        attempts = await inbox_events.record_attempt(session, event_id, error)
        if dead:
            await inbox_events.finish(session, event_id, "dead", error)
        else:
            await defer(session, deps, PROCESS_EVENT, schedule_in_s=wait_s, event_id=event_id, tried=1)
    log.warning("event processing failed", event_id=event_id, attempts=attempts, error=error, dead=dead)
