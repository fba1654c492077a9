"""The webhook hot path: every acknowledgement is one or two statements on a plain autocommit psycopg
pool, written once. A delivery's inbox row and its procrastinate task are one INSERT ... SELECT through
procrastinate's own defer function (its NOTIFY trigger wakes a worker as for any defer), so storing and
queueing cannot disagree, and no ORM, session, BEGIN/COMMIT or pool ping sits between Hume and its 202.
Deliveries that arrive together share that statement and its commit (app/store/batching.py): each is
answered only once the commit holding its rows is done. The events one statement stores share one queue
task, given their ids (`event_ids`): a task per event cost Postgres 183 us of CPU per EVI delivery in a
statement of 16, one per statement 155-172, and the worker a fetch and a finish per event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import AsyncConnection

from app.store.batching import Batcher
from app.store.db import Database

# Many deliveries in one statement (see app/store/batching.py). A chat's job is looked up before it is
# created, so a delivery for a known chat takes no row lock (the worker may hold the job's for seconds
# while it ingests the chat). The lookup is one probe of the (kind, hume_job_id) index per chat, kept apart
# by LIMIT so the planner cannot join instead: joined (`IN (SELECT chat_id FROM input)`, or `= ANY`), it
# trusted statistics a table growing by a row a chat leaves behind, and read every evi_chat job (30,000
# rows: 17-65 ms a statement of 64 deliveries; 0.3 ms probed). Two first deliveries of one chat racing in
# separate statements: the loser's insert finds the winner's row and does nothing, and its snapshot cannot
# see that row, so its chat comes back unresolved and the delivery is written again by a later statement,
# which sees it.
_STORE_MANY = """
WITH input AS (
    SELECT * FROM unnest(
        %(providers)b::text[], %(dedup_keys)b::text[], %(event_types)b::text[], %(job_ids)b::uuid[],
        %(chat_ids)b::text[], %(headers)b::text[], %(bodies)b::bytea[], %(tasks)b::text[]
    ) AS t(provider, dedup_key, event_type, job_id, chat_id, headers, body, task)
), chat_found AS (
    SELECT found.id, found.hume_job_id FROM (SELECT DISTINCT chat_id FROM input WHERE chat_id IS NOT NULL) c
    CROSS JOIN LATERAL (
        SELECT id, hume_job_id FROM job WHERE kind = 'evi_chat' AND hume_job_id = c.chat_id LIMIT 1
    ) found
), chat_made AS (
    INSERT INTO job (id, kind, status, hume_job_id)
    SELECT DISTINCT ON (chat_id) gen_random_uuid(), 'evi_chat', 'in_progress', chat_id FROM input
    WHERE chat_id IS NOT NULL AND chat_id NOT IN (SELECT hume_job_id FROM chat_found)
    ORDER BY chat_id
    ON CONFLICT (kind, hume_job_id) DO NOTHING
    RETURNING id, hume_job_id
), chat AS (
    SELECT id, hume_job_id FROM chat_found UNION ALL SELECT id, hume_job_id FROM chat_made
), ins AS (
    INSERT INTO inbox_event (provider, dedup_key, event_type, job_id, headers, body)
    SELECT i.provider, i.dedup_key, i.event_type, coalesce(i.job_id, chat.id), i.headers::jsonb, i.body
    FROM input i LEFT JOIN chat ON chat.hume_job_id = i.chat_id
    WHERE i.chat_id IS NULL OR chat.id IS NOT NULL
    ORDER BY i.dedup_key
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id, dedup_key
), queued AS (
    SELECT procrastinate_defer_jobs_v1(array_agg(ROW(
        'default', t.task, 0, NULL, NULL, jsonb_build_object('event_ids', t.event_ids), NULL
    )::procrastinate_job_to_defer_v1))
    FROM (
        SELECT i.task, jsonb_agg(ins.id ORDER BY ins.id) AS event_ids
        FROM ins JOIN input i USING (dedup_key) WHERE i.task IS NOT NULL GROUP BY i.task
    ) t
    HAVING count(*) > 0
)
SELECT ins.dedup_key, ins.id FROM ins LEFT JOIN queued ON true
UNION ALL
SELECT hume_job_id, NULL FROM chat
"""

_CALLBACK_TARGETS = "SELECT id, kind, callback_token_hash, hume_job_id FROM job WHERE id = ANY(%(job_ids)b::uuid[])"


@dataclass(frozen=True)
class CallbackTarget:
    """What a batch callback URL is checked against, read before its body."""

    job_id: uuid.UUID
    kind: str
    callback_token_hash: str | None
    hume_job_id: str | None


@dataclass(frozen=True)
class _Delivery:
    provider: str
    dedup_key: str
    event_type: str
    job_id: uuid.UUID | None
    chat_id: str | None
    """An EVI chat's id: its job is found or created in the same statement."""
    headers: str
    body: bytes
    task: str | None


_RACE_RETRIES = 3
_UNRESOLVED = -1
"""A delivery whose chat job was created by a concurrent statement it could not see: write it again."""


class WebhookIntake:
    """Acknowledgements' writes and callback lookups, batched, on the database's autocommit pool."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Two writers: one statement fills while the other commits. Bodies count towards a statement's
        # size, so a batch callback's megabytes of predictions travel alone.
        self._writes: Batcher[_Delivery, int | None] = Batcher(
            self._write, runners=2, max_items=64, max_bytes=4 << 20, size=lambda d: len(d.body) + len(d.headers)
        )
        self._lookups: Batcher[uuid.UUID, CallbackTarget | None] = Batcher(
            self._look_up, runners=2, max_items=256, max_bytes=256, size=lambda _: 1
        )

    async def aclose(self) -> None:
        await self._writes.aclose()
        await self._lookups.aclose()

    async def callback_target(self, job_id: uuid.UUID) -> CallbackTarget | None:
        """The job a callback URL names; concurrent callbacks' lookups share one round trip."""
        return await self._lookups.submit(job_id)

    async def _look_up(self, job_ids: Sequence[uuid.UUID]) -> list[CallbackTarget | None]:
        async with self._db.connection() as connection:
            # Never prepared, as _write explains.
            cursor = await connection.execute(_CALLBACK_TARGETS, {"job_ids": list(job_ids)}, prepare=False)
            found = {row[0]: CallbackTarget(*row) for row in await cursor.fetchall()}
        return [found.get(job_id) for job_id in job_ids]

    async def store(
        self,
        *,
        provider: str,
        dedup_key: str,
        event_type: str,
        job_id: uuid.UUID | None,
        headers: dict[str, str],
        body: bytes,
        task: str | None,
    ) -> int | None:
        """The new event's id (stored, and queued unless `task` is None), or None for a duplicate. `task`
        takes `event_ids`: the events stored by one statement share one task."""
        return await self._submit(
            _Delivery(provider, dedup_key, event_type, job_id, None, orjson.dumps(headers).decode(), body, task)
        )

    async def store_chat_event(
        self, *, chat_id: str, provider: str, dedup_key: str, event_type: str, headers: dict[str, str], body: bytes,
        task: str,
    ) -> int | None:  # fmt: skip
        """Find or create the chat's job, store the event under it and queue it, in one transaction."""
        return await self._submit(
            _Delivery(provider, dedup_key, event_type, None, chat_id, orjson.dumps(headers).decode(), body, task)
        )

    async def _submit(self, delivery: _Delivery) -> int | None:
        for _ in range(_RACE_RETRIES):
            event_id = await self._writes.submit(delivery)
            if event_id != _UNRESOLVED:
                return event_id
        raise RuntimeError(f"chat {delivery.chat_id!r}: its job was neither found nor created")

    async def _write(self, deliveries: Sequence[_Delivery]) -> list[int | None]:
        async with self._db.connection() as connection:
            return await _store_all(connection, deliveries)


async def store_event(
    connection: AsyncConnection[Any], *, provider: str, dedup_key: str, event_type: str, job_id: uuid.UUID | None,
    headers: dict[str, str], body: bytes, task: str | None,
) -> int | None:  # fmt: skip
    """Store an event and queue `task(event_ids=[...])` on the caller's connection (inside its transaction,
    when it has one), by the statement acknowledgements use; None when the dedup key is taken."""
    delivery = _Delivery(provider, dedup_key, event_type, job_id, None, orjson.dumps(headers).decode(), body, task)
    [event_id] = await _store_all(connection, [delivery])
    return event_id


async def _store_all(connection: AsyncConnection[Any], deliveries: Sequence[_Delivery]) -> list[int | None]:
    """One statement for all: each delivery's event id, None for a duplicate, _UNRESOLVED to retry."""
    first: dict[str, _Delivery] = {}
    for delivery in deliveries:
        first.setdefault(delivery.dedup_key, delivery)  # a key twice in one statement: the later is a duplicate
    unique = list(first.values())
    # Binary parameters: psycopg writes text arrays in Python, escaping every body and header string (52 us
    # a delivery in a statement of 16 EVI deliveries; 9 us in binary).
    params = {
        "providers": [d.provider for d in unique],
        "dedup_keys": [d.dedup_key for d in unique],
        "event_types": [d.event_type for d in unique],
        "job_ids": [d.job_id for d in unique],
        "chat_ids": [d.chat_id for d in unique],
        "headers": [d.headers for d in unique],
        "bodies": [d.body for d in unique],
        "tasks": [d.task for d in unique],
    }
    # Never prepared: a generic plan made while the tables were small (a new deployment) kept scanning
    # `job` whole as it grew; acks fell from ~600/s to ~250/s within half a minute. One plan per statement
    # of up to 64 deliveries costs little.
    cursor = await connection.execute(_STORE_MANY, params, prepare=False)
    rows = await cursor.fetchall()
    stored = {key: event_id for key, event_id in rows if event_id is not None}
    chats = {key for key, event_id in rows if event_id is None}
    outcome: dict[str, int | None] = {}
    for key, delivery in first.items():
        if key in stored:
            outcome[key] = int(stored[key])
        elif delivery.chat_id is not None and delivery.chat_id not in chats:
            outcome[key] = _UNRESOLVED
        else:
            outcome[key] = None
    # A key's later copies in the same statement are its duplicates (or retry with it).
    return [
        outcome[d.dedup_key] if first[d.dedup_key] is d or outcome[d.dedup_key] == _UNRESOLVED else None
        for d in deliveries
    ]
