"""The delivery task's rows on a plain autocommit psycopg connection (the database's autocommit pool): one
statement reads a message with its endpoint, one records a successful attempt with the message's end.

The delivery hot path runs these once per attempt, so no ORM, session, BEGIN/COMMIT or pool ping sits
between two POSTs; failures (rarer, and touching the endpoint and the queue too) keep the session path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from app.store.webhook_messages import FINISH_ATTEMPT, attempt_params

_READ = """
SELECT m.state, m.attempts, m.msg_id, m.payload::text,
       e.id, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at, e.disabled_at, e.failing_since
FROM webhook_message m JOIN webhook_endpoint e ON e.id = m.endpoint_id
WHERE m.id = %(id)s
"""


@dataclass(frozen=True)
class Outgoing:
    """A message as its delivery attempt needs it, with its endpoint's address, secrets and state."""

    state: str
    attempts: int
    msg_id: str
    body: bytes
    """The payload as Postgres prints jsonb: the same bytes on every attempt."""
    endpoint_id: uuid.UUID
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    disabled_at: datetime | None
    failing_since: datetime | None


async def outgoing(connection: AsyncConnection[Any], message_id: int) -> Outgoing | None:
    """The message and its endpoint in one round trip (None once deleted, with its endpoint or alone)."""
    cursor = await connection.execute(_READ, {"id": message_id})
    row = await cursor.fetchone()
    if row is None:
        return None
    state, attempts, msg_id, payload, *endpoint = row
    return Outgoing(state, attempts, msg_id, payload.encode("utf-8"), *endpoint)


async def delivered(
    connection: AsyncConnection[Any], message_id: int, *, attempts: int, status: int, response: bytes, duration_ms: int
) -> bool:
    """Record a 2xx attempt and end the message, in one statement (webhook_messages.FINISH_ATTEMPT); False if
    the message is gone."""
    params = attempt_params(
        message_id, state="delivered", attempts=attempts, next_attempt_at=None, status_code=status,
        response=response, duration_ms=duration_ms, error=None,
    )  # fmt: skip
    cursor = await connection.execute(FINISH_ATTEMPT, params)
    return await cursor.fetchone() is not None
