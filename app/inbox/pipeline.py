"""The inbox pipeline's registry: what processes each provider's events, what starts each backend's jobs,
and what the reconciler checks. Features register here (through `app.wiring`); the task runner, replay and
the reconciler only ever look things up, so a new provider or backend plugs in without touching them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.deps import Deps
from app.store.tables import InboxEvent

# procrastinate task names: the one event runner, the job starter, the periodic reconciler and pruning.
PROCESS_EVENT = "process_event"
START_JOB = "submit_job"
RECONCILE = "reconcile"
PRUNE = "prune_finished_tasks"
# Sends the due messages of one outbound webhook endpoint, several at a time (app/notifications/delivery.py;
# app/worker/outbox.py queues it for an endpoint, a retry for one message).
DELIVER_MESSAGE = "deliver_webhook_message"
# Reads what Hume billed for v1 runs answered (app/usage/billed_runs.py); one waits at a time.
READ_BILLED = "read_hume_billed"

EventHandler = Callable[[Deps, InboxEvent], Awaitable[str]]
"""Applies one stored event; returns what happened (for logs). It ends the event itself, with
`inbox_events.finish`, in the same transaction as its effect; raising leaves it for a retry."""

QueueTask = Callable[..., Awaitable[None]]
"""A feature's own queue task, called as `task(deps, **arguments)`; the queue retries it (with the
worker's backoff) only when it raises, e.g. while the database is away."""

Check = Callable[[Deps], Awaitable[int]]
"""A reconciler check; returns how many things it looked at."""


class RetryLater(Exception):
    """The outcome is not known yet (Hume says the job or chat has not ended); retried with backoff."""


@dataclass(frozen=True)
class JobBackend:
    """How a job of one backend starts; `give_up` ends it when every try failed transiently."""

    start: Callable[[Deps, uuid.UUID], Awaitable[None]]
    give_up: Callable[[Deps, uuid.UUID, str], Awaitable[None]]


@dataclass
class Pipeline:
    handlers: dict[str, EventHandler] = field(default_factory=dict)
    """By provider (the inbox row's `provider`): hume_batch, poll, hume_evi, evi_backfill, ..."""
    backends: dict[str, JobBackend] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    tasks: dict[str, QueueTask] = field(default_factory=dict)
    """Further queue tasks by name (registered on the queue when it is built)."""
    permanent: tuple[type[BaseException], ...] = ()
    """Errors retrying cannot fix: the event goes dead at once (an operator can replay it after a fix)."""

    def handle(self, providers: tuple[str, ...], handler: EventHandler) -> None:
        for provider in providers:
            self.handlers[provider] = handler


def pipeline(deps: Deps) -> Pipeline:
    return deps.pipeline
