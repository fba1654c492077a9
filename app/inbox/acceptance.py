"""Accepting a verified delivery: its inbox row and its processing task in ONE transaction, and one log
line and one metrics sample per delivery, whatever the provider."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import logs
from app.core import metrics
from app.deps import Deps
from app.inbox.pipeline import PROCESS_EVENTS
from app.store.db import driver_connection
from app.store.webhook_intake import store_event


@dataclass(frozen=True)
class Accepted:
    """A verified delivery's fate: stored under `event_id`, or a duplicate of a stored one."""

    event_id: int | None
    log_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def duplicate(self) -> bool:
        return self.event_id is None


async def defer(
    session: AsyncSession, deps: Deps, task: str, *, schedule_in_s: float | None = None, **kwargs: Any
) -> None:
    """Enqueue on the session's own connection: the task exists if and only if the transaction commits."""
    connection = await driver_connection(session)
    schedule_in = None if schedule_in_s is None else {"seconds": schedule_in_s}
    await deps.queue.configure_task(task, connection=connection, schedule_in=schedule_in).defer_async(**kwargs)


async def store_and_queue(
    session: AsyncSession,
    deps: Deps,
    *,
    provider: str,
    dedup_key: str,
    event_type: str,
    job_id: uuid.UUID | None,
    headers: dict[str, str],
    body: bytes,
    queue: bool = True,
) -> int | None:
    """The new event's id (stored, and queued unless `queue` is false), or None for a duplicate."""
    return await store_event(
        await driver_connection(session), provider=provider, dedup_key=dedup_key, event_type=event_type,
        job_id=job_id, headers=headers, body=body, task=PROCESS_EVENTS if queue else None,
    )  # fmt: skip


def record_delivery(kind: str, outcome: str, **fields: Any) -> None:
    """The one place a webhook delivery is counted and described: accepted, duplicate, rejected,
    unavailable. Its fields join the request's own log line (one line per delivery, not two)."""
    counter = _DELIVERIES.get((kind, outcome))
    if counter is None:  # labels() validates and locks on every call: its children are kept
        counter = _DELIVERIES[kind, outcome] = metrics.WEBHOOKS.labels(kind, outcome)
    counter.inc()
    logs.add_request_fields(webhook=kind, outcome=outcome, **fields)


_DELIVERIES: dict[tuple[str, str], Any] = {}
