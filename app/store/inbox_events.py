"""The inbox: every accepted webhook delivery, deduplicated by a unique key, kept for audit and replay."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.tables import InboxEvent


async def get(session: AsyncSession, event_id: int) -> InboxEvent | None:
    return await session.get(InboxEvent, event_id)


# The worker's first and last statements of most tasks, on a plain autocommit psycopg connection: no
# session, pool ping or ORM identity map between procrastinate's fetch and finish.
_COLUMNS = ("id", "provider", "dedup_key", "event_type", "job_id", "headers", "body", "state", "attempts",
            "last_error", "received_at", "processed_at")  # fmt: skip
# A body up to this size comes with the row; a larger one (a 3-hour batch callback is ~90 MB) is read in
# slices into one buffer, so reading it costs the body plus one slice rather than twice the body (libpq's
# result holding the whole value while Python copies it out).
BODY_SLICE = 4 << 20
_READ = (
    "SELECT "
    + ", ".join(c if c != "body" else "CASE WHEN octet_length(body) <= %(slice)s THEN body END" for c in _COLUMNS)
    + ", octet_length(body) FROM inbox_event WHERE id = %(id)s"
)
_SLICE = "SELECT substring(body FROM %(start)s FOR %(size)s) FROM inbox_event WHERE id = %(id)s"


def end_event_sql(state: str, note: str, event_id: str) -> str:
    """The rule that ends an event, written once: `state` and `note` (SQL expressions) are set unless a racing
    run already marked it done, whose outcome is the true one."""
    return (
        f"UPDATE inbox_event SET state = {state}, last_error = {note}, processed_at = now()"
        f" WHERE id = {event_id} AND state <> 'done'"
    )


_END = end_event_sql("%(state)s", "%(note)s", "%(id)s")


async def read(connection: AsyncConnection[Any], event_id: int) -> InboxEvent | None:
    """An event, detached from any session (its handler reads it, never writes it): one statement, and one more
    per BODY_SLICE of a body larger than that. Binary results: bytea as text would arrive hex, twice its size."""
    cursor = await connection.execute(_READ, {"id": event_id, "slice": BODY_SLICE}, binary=True)
    row = await cursor.fetchone()
    if row is None:
        return None
    *values, size = row
    fields = dict(zip(_COLUMNS, values, strict=True))
    if fields["body"] is None and size is not None:
        fields["body"] = await _read_body(connection, event_id, size)
    return InboxEvent(**fields)


async def _read_body(connection: AsyncConnection[Any], event_id: int, size: int) -> bytearray:
    body = bytearray(size)  # filled in place: growing it would copy the body at each reallocation
    for offset in range(0, size, BODY_SLICE):
        params = {"id": event_id, "start": offset + 1, "size": BODY_SLICE}  # substring counts from 1
        cursor = await connection.execute(_SLICE, params, binary=True)
        part = await cursor.fetchone()
        if part is None or part[0] is None or len(part[0]) != min(BODY_SLICE, size - offset):
            return bytearray()  # pruned or deleted meanwhile: what is left reads as empty
        body[offset : offset + len(part[0])] = part[0]
    return body


async def end(connection: AsyncConnection[Any], event_id: int, state: str, note: str | None = None) -> None:
    """`finish` as one autocommit statement, for a task with nothing else to write."""
    await connection.execute(_END, {"id": event_id, "state": state, "note": note})


async def finish(session: AsyncSession, event_id: int, state: str, note: str | None = None) -> None:
    """End an event (done, ignored, dead) in the session's transaction, by the same statement as `end`."""
    connection = await session.connection()
    await connection.exec_driver_sql(_END, {"id": event_id, "state": state, "note": note})


async def id_by_key(session: AsyncSession, dedup_key: str) -> int | None:
    result = await session.execute(select(InboxEvent.id).where(InboxEvent.dedup_key == dedup_key))
    return result.scalar_one_or_none()


async def record_attempt(session: AsyncSession, event_id: int, error: str) -> int:
    result = await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == event_id)
        .values(attempts=InboxEvent.attempts + 1, last_error=error)
        .returning(InboxEvent.attempts)
    )
    return int(result.scalar_one())


@dataclass(frozen=True)
class EventSummary:
    """An event as listed for operators: everything but the body, which can be tens of MB."""

    id: int
    provider: str
    dedup_key: str
    event_type: str
    job_id: uuid.UUID | None
    state: str
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    body_bytes: int
    body_pruned_at: datetime | None


_SUMMARY_COLUMNS = (
    InboxEvent.id,
    InboxEvent.provider,
    InboxEvent.dedup_key,
    InboxEvent.event_type,
    InboxEvent.job_id,
    InboxEvent.state,
    InboxEvent.attempts,
    InboxEvent.last_error,
    InboxEvent.received_at,
    InboxEvent.processed_at,
    func.octet_length(InboxEvent.body),
    InboxEvent.body_pruned_at,
)


async def page(
    session: AsyncSession, *, state: str | None, limit: int, after_id: int | None = None
) -> list[EventSummary]:
    """Newest first, after the cursor (an event id); bodies are never read, only their size."""
    query = select(*_SUMMARY_COLUMNS).order_by(InboxEvent.id.desc()).limit(limit)
    if state is not None:
        query = query.where(InboxEvent.state == state)
    if after_id is not None:
        query = query.where(InboxEvent.id < after_id)
    return [EventSummary(*row) for row in await session.execute(query)]


def summary(event: InboxEvent) -> EventSummary:
    return EventSummary(
        event.id, event.provider, event.dedup_key, event.event_type, event.job_id, event.state, event.attempts,
        event.last_error, event.received_at, event.processed_at, len(event.body), event.body_pruned_at,
    )  # fmt: skip


async def count_pending(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count()).select_from(InboxEvent).where(InboxEvent.state.in_(("received", "processing")))
    )
    return int(result.scalar_one())


async def orphaned(
    session: AsyncSession, *, tasks: tuple[str, ...], older_than_s: float, limit: int = 100
) -> list[InboxEvent]:
    """Events still waiting whose queue task is gone (failed while the database was unreachable, deleted):
    without this they would wait forever."""
    result = await session.execute(
        text(
            """
            SELECT e.id FROM inbox_event e
             WHERE e.state = 'received'
               AND e.received_at < now() - make_interval(secs => :older_than_s)
               AND NOT EXISTS (
                   SELECT 1 FROM procrastinate_jobs j
                    WHERE j.task_name = ANY(:tasks) AND j.status IN ('todo', 'doing')
                      AND (j.args ->> 'event_id' = e.id::text OR j.args -> 'event_ids' @> to_jsonb(e.id)))
             ORDER BY e.id
             LIMIT :limit
            """
        ),
        {"older_than_s": older_than_s, "tasks": list(tasks), "limit": limit},
    )
    ids = [row[0] for row in result]
    if not ids:
        return []
    return list((await session.execute(select(InboxEvent).where(InboxEvent.id.in_(ids)))).scalars())


async def reopen(session: AsyncSession, event_id: int) -> InboxEvent | None:
    """Put an event back to `received` for another round of processing (replay); None if unknown."""
    result = await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == event_id)
        .values(state="received", processed_at=None)
        .returning(InboxEvent)
    )
    return result.scalar_one_or_none()


async def revive_dead(session: AsyncSession, dedup_key: str, *, max_attempts: int) -> int | None:
    """Put the dead event with this key back to `received` (unless it already failed `max_attempts`
    times in all); its id, or None when there is no such event."""
    result = await session.execute(
        update(InboxEvent)
        .where(InboxEvent.dedup_key == dedup_key, InboxEvent.state == "dead", InboxEvent.attempts < max_attempts)
        .values(state="received", processed_at=None)
        .returning(InboxEvent.id)
    )
    return result.scalar_one_or_none()


@dataclass(frozen=True)
class Trouble:
    """A job's latest event that failed at least once: retrying (still open) or dead."""

    id: int
    state: str
    attempts: int
    last_error: str | None


async def trouble_for_job(session: AsyncSession, job_id: uuid.UUID) -> Trouble | None:
    """The newest event of the job that is dead or being retried, so users see why a job is stuck."""
    row = (
        await session.execute(
            select(InboxEvent.id, InboxEvent.state, InboxEvent.attempts, InboxEvent.last_error)
            .where(
                InboxEvent.job_id == job_id,
                (InboxEvent.state == "dead")
                | (InboxEvent.state.in_(("received", "processing")) & InboxEvent.last_error.is_not(None)),
            )
            .order_by(InboxEvent.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return Trouble(id=row.id, state="dead" if row.state == "dead" else "retrying", attempts=row.attempts,
                   last_error=row.last_error)  # fmt: skip


_PRUNE_BODIES = text(
    """
    WITH due AS (
        SELECT id FROM inbox_event
         WHERE state IN ('done', 'ignored') AND body_pruned_at IS NULL
           AND processed_at < now() - make_interval(hours => :hours)
         ORDER BY processed_at
         LIMIT :batch
         FOR UPDATE SKIP LOCKED
    )
    UPDATE inbox_event e SET body = ''::bytea, body_pruned_at = now() FROM due WHERE e.id = due.id
    """
)


async def prune_bodies(session: AsyncSession, *, older_than_h: int, batch: int) -> int:
    """Empty the bodies of up to `batch` events processed (done or ignored) over `older_than_h` ago; the rows
    stay, so their dedup keys still turn a late repeat into a duplicate. Returns how many."""
    result = await session.execute(_PRUNE_BODIES, {"hours": older_than_h, "batch": batch})
    return int(getattr(result, "rowcount", 0))
