"""The delivery task's rows on a plain autocommit psycopg connection (the database's autocommit pool): an
endpoint with its address and secrets, a claim of its due messages, and the record of their attempts.

A task sends several due messages of one endpoint: one statement claims them (each leased: its due time
moves ahead, so a worker that dies leaves it to be sent again then), one records a wave of answered
attempts, each with its own attempt row and its message's own state. No ORM, session, BEGIN/COMMIT or pool
ping sits between two POSTs; failures (rarer, and touching the endpoint and the queue too) run the same
record statement inside a session's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from app.store.webhook_messages import snippet

# FOR UPDATE waits for every open transaction that inserted a message of this endpoint (the foreign key's
# check holds FOR KEY SHARE on the endpoint's row until that transaction ends): a job end whose wake-up was
# skipped because this task still waited in the queue (app/worker/outbox.wake) has committed its message
# before the claim that follows reads the endpoint's due ones. In autocommit the lock ends with the statement.
_ENDPOINT = """
SELECT e.id, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at, e.disabled_at, e.failing_since
FROM webhook_endpoint e
WHERE e.id = coalesce(%(endpoint)s::uuid, (SELECT endpoint_id FROM webhook_message WHERE id = %(message)s))
FOR UPDATE
"""

# Oldest first by created_at, which walks ix_webhook_message_pending_endpoint_id_created_at: this endpoint's
# pending messages only (a handful while deliveries keep up), neither its delivery log nor other endpoints'
# retries (with 200,000 delivered and another's 5,000 pending, see migration 0019). Nothing once the endpoint is
# disabled (by its owner, or by another task's 410), so a task running then stops sending at its next claim.
# Never a message this statement records (%(id)s): its lease may have run out meanwhile, and one statement
# must not update a row twice.
_CLAIMED = """claimed AS (
    UPDATE webhook_message m SET next_attempt_at = now() + make_interval(secs => %(lease)s)
    WHERE m.id IN (
        SELECT id FROM webhook_message
        WHERE state = 'pending' AND endpoint_id = %(endpoint)s AND next_attempt_at <= now()
          AND id <> ALL(%(id)s::bigint[])
          AND EXISTS (SELECT 1 FROM webhook_endpoint e WHERE e.id = %(endpoint)s AND e.disabled_at IS NULL)
        ORDER BY created_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING m.id, m.attempts, m.msg_id, m.payload::text AS payload
)"""

# Each attempt gets its row and its message's new state; a message deleted meanwhile (its endpoint removed)
# gets neither. The UPDATE takes the row lock `webhook_messages.lock` takes, so a manual retry or a replay of
# the same message waits for it.
_LOGGED = """attempt AS (
    SELECT * FROM unnest(
        %(id)s::bigint[], %(state)s::text[], %(attempts)s::integer[], %(next)s::timestamptz[],
        %(status)s::integer[], %(snippet)s::text[], %(ms)s::integer[], %(error)s::text[]
    ) AS a(id, state, attempts, next_attempt_at, status, snippet, ms, error)
), moved AS (
    UPDATE webhook_message m SET state = a.state, attempts = a.attempts, next_attempt_at = a.next_attempt_at
    FROM attempt a WHERE m.id = a.id
    RETURNING m.id
), logged AS (
    INSERT INTO webhook_attempt (message_id, status_code, response_snippet, duration_ms, error)
    SELECT a.id, a.status, a.snippet, a.ms, a.error FROM attempt a JOIN moved ON moved.id = a.id
    RETURNING message_id
)"""

_CLAIM = f"WITH {_CLAIMED} SELECT id, attempts, msg_id, payload FROM claimed"
_RECORD = f"WITH {_LOGGED} SELECT message_id FROM logged"
# Both in one round trip (and one commit): recorded ids come with attempts NULL.
_RECORD_AND_CLAIM = f"""WITH {_LOGGED}, {_CLAIMED}
SELECT message_id, NULL::integer, NULL::text, NULL::text FROM logged
UNION ALL SELECT id, attempts, msg_id, payload FROM claimed"""

_FAIL_DUE = """
UPDATE webhook_message SET state = 'failed', next_attempt_at = NULL
WHERE state = 'pending' AND endpoint_id = %(endpoint)s AND next_attempt_at <= now()
"""

_OVERDUE = """
SELECT endpoint_id FROM webhook_message
WHERE state = 'pending' AND next_attempt_at < now() - make_interval(secs => %(after)s)
GROUP BY endpoint_id ORDER BY min(next_attempt_at) LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as its deliveries need it: where, the secrets that sign, and its state."""

    id: uuid.UUID
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    disabled_at: datetime | None
    failing_since: datetime | None


@dataclass(frozen=True)
class Message:
    """A claimed message: what its attempt sends."""

    id: int
    attempts: int
    """Attempts of its current round before this one."""
    msg_id: str
    body: bytes
    """The payload as Postgres prints jsonb: the same bytes on every attempt."""


@dataclass(frozen=True)
class Attempt:
    """One answered (or failed) attempt and what it makes of its message."""

    message_id: int
    state: str
    attempts: int
    next_attempt_at: datetime | None
    status: int | None
    response: bytes
    duration_ms: int
    error: str | None


async def endpoint(
    connection: AsyncConnection[Any], *, endpoint_id: uuid.UUID | None = None, message_id: int | None = None
) -> Endpoint | None:
    """The endpoint (given, or the message's), once every open transaction adding to it has ended; None once
    deleted."""
    cursor = await connection.execute(_ENDPOINT, {"endpoint": endpoint_id, "message": message_id})
    row = await cursor.fetchone()
    return None if row is None else Endpoint(*row)


async def claim(
    connection: AsyncConnection[Any], endpoint_id: uuid.UUID, *, limit: int, lease_s: float
) -> list[Message]:
    """Up to `limit` of the endpoint's due pending messages, oldest first, each leased for `lease_s` (its
    next_attempt_at moved that far ahead); two tasks at once take different ones (SKIP LOCKED)."""
    cursor = await connection.execute(_CLAIM, {"endpoint": endpoint_id, "limit": limit, "lease": lease_s, "id": []})
    return _messages(await cursor.fetchall())


async def fail_due(connection: AsyncConnection[Any], endpoint_id: uuid.UUID) -> int:
    """A disabled endpoint's due messages end `failed` unsent (an enabled endpoint's retry sends them again)."""
    cursor = await connection.execute(_FAIL_DUE, {"endpoint": endpoint_id})
    return cursor.rowcount


async def record(connection: AsyncConnection[Any], attempts: Sequence[Attempt]) -> set[int]:
    """Each attempt's row and its message's new state, in one statement; the ids of the messages recorded
    (one deleted meanwhile is not)."""
    cursor = await connection.execute(_RECORD, _attempt_params(attempts))
    return {row[0] for row in await cursor.fetchall()}


async def record_and_claim(
    connection: AsyncConnection[Any], attempts: Sequence[Attempt], endpoint_id: uuid.UUID, *, limit: int,
    lease_s: float,
) -> tuple[set[int], list[Message]]:  # fmt: skip
    """`record` and `claim` in one statement."""
    params = {**_attempt_params(attempts), "endpoint": endpoint_id, "limit": limit, "lease": lease_s}
    cursor = await connection.execute(_RECORD_AND_CLAIM, params)
    rows = await cursor.fetchall()
    return {row[0] for row in rows if row[1] is None}, _messages([row for row in rows if row[1] is not None])


def _messages(rows: Sequence[tuple[Any, ...]]) -> list[Message]:
    return sorted(
        (Message(id_, attempts, msg_id, payload.encode("utf-8")) for id_, attempts, msg_id, payload in rows),
        key=lambda message: message.id,
    )


def _attempt_params(attempts: Sequence[Attempt]) -> dict[str, list[Any]]:
    return {
        "id": [a.message_id for a in attempts],
        "state": [a.state for a in attempts],
        "attempts": [a.attempts for a in attempts],
        "next": [a.next_attempt_at for a in attempts],
        "status": [a.status for a in attempts],
        "snippet": [snippet(a.response) for a in attempts],
        "ms": [a.duration_ms for a in attempts],
        "error": [a.error for a in attempts],
    }


async def overdue_endpoints(connection: AsyncConnection[Any], *, after_s: float, limit: int) -> list[uuid.UUID]:
    """Up to `limit` endpoints with a pending message due over `after_s` ago, the longest overdue first: its
    wake-up was lost (a worker died holding its lease) or waits behind a backlog."""
    cursor = await connection.execute(_OVERDUE, {"after": after_s, "limit": limit})
    return [row[0] for row in await cursor.fetchall()]
