"""The webhook hot path: every acknowledgement is one or two statements on a plain autocommit psycopg
pool, written once. A delivery's inbox row and its procrastinate task are one INSERT ... SELECT through
procrastinate's own defer function (its NOTIFY trigger wakes a worker as for any defer), so storing and
queueing cannot disagree, and no ORM, session, BEGIN/COMMIT or pool ping sits between Hume and its 202.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from app.config import libpq_url

_QUEUE = """
queued AS (
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
        'default', %(task)s::varchar, 0, NULL, NULL, jsonb_build_object('event_id', ins.id), NULL
    )::procrastinate_job_to_defer_v1])
    FROM ins WHERE %(task)s::varchar IS NOT NULL
)
SELECT ins.id FROM ins LEFT JOIN queued ON true
"""

STORE_EVENT = (
    """
WITH ins AS (
    INSERT INTO inbox_event (provider, dedup_key, event_type, job_id, headers, body)
    VALUES (%(provider)s, %(dedup_key)s, %(event_type)s, %(job_id)s, %(headers)s::jsonb, %(body)s)
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id
), """
    + _QUEUE
)

# DO UPDATE (not DO NOTHING) so that two first deliveries of one chat racing each other both get the
# job's id: the loser waits for the winner's row and returns it, where a later SELECT in the same
# statement could not see it.
_STORE_CHAT_EVENT = (
    """
WITH chat AS (
    INSERT INTO job (id, kind, status, hume_job_id)
    VALUES (%(new_job_id)s, 'evi_chat', 'in_progress', %(chat_id)s)
    ON CONFLICT (kind, hume_job_id) DO UPDATE SET hume_job_id = EXCLUDED.hume_job_id
    RETURNING id
), ins AS (
    INSERT INTO inbox_event (provider, dedup_key, event_type, job_id, headers, body)
    SELECT %(provider)s, %(dedup_key)s, %(event_type)s, chat.id, %(headers)s::jsonb, %(body)s FROM chat
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id
), """
    + _QUEUE
)

_CALLBACK_TARGET = "SELECT kind, callback_token_hash, hume_job_id FROM job WHERE id = %(job_id)s"


@dataclass(frozen=True)
class CallbackTarget:
    """What a batch callback URL is checked against, read before its body."""

    job_id: uuid.UUID
    kind: str
    callback_token_hash: str | None
    hume_job_id: str | None


def _event(
    *, provider: str, dedup_key: str, event_type: str, job_id: uuid.UUID | None, headers: dict[str, str], body: bytes,
    task: str | None,
) -> dict[str, Any]:  # fmt: skip
    return {"provider": provider, "dedup_key": dedup_key, "event_type": event_type, "job_id": job_id,
            "headers": orjson.dumps(headers).decode(), "body": body, "task": task}  # fmt: skip


async def store_event(connection: AsyncConnection[Any], **event: Any) -> int | None:
    """Store an event and queue `task(event_id=...)` on the caller's connection (inside its transaction,
    when it has one); None when the dedup key is taken. Keywords: those of `WebhookIntake.store`."""
    cursor = await connection.execute(STORE_EVENT, _event(**event))
    row = await cursor.fetchone()
    assert row is None or isinstance(row, tuple)
    return None if row is None else int(row[0])


class WebhookIntake:
    def __init__(self, database_url: str, *, size: int) -> None:
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_url(database_url),
            min_size=min(2, size),
            max_size=size,
            kwargs={"autocommit": True},
            open=False,
            # Waiting longer would only hold Hume's connection: a 503 makes it retry.
            timeout=10.0,
        )

    async def open(self) -> None:
        # Not waiting: the service starts (and answers 503) while the database is away.
        await self.pool.open(wait=False)

    async def aclose(self) -> None:
        await self.pool.close()

    async def _one(self, sql: str, params: dict[str, Any]) -> TupleRow | None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(sql, params)
            row = await cursor.fetchone()
        assert row is None or isinstance(row, tuple)
        return row

    async def callback_target(self, job_id: uuid.UUID) -> CallbackTarget | None:
        row = await self._one(_CALLBACK_TARGET, {"job_id": job_id})
        return None if row is None else CallbackTarget(job_id, *row)

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
        """The new event's id (stored, and queued as `task` unless None), or None for a duplicate."""
        async with self.pool.connection() as connection:
            return await store_event(
                connection, provider=provider, dedup_key=dedup_key, event_type=event_type, job_id=job_id,
                headers=headers, body=body, task=task,
            )  # fmt: skip

    async def store_chat_event(
        self, *, chat_id: str, provider: str, dedup_key: str, event_type: str, headers: dict[str, str], body: bytes,
        task: str,
    ) -> int | None:  # fmt: skip
        """Find or create the chat's job, store the event under it and queue it: one statement."""
        params = _event(
            provider=provider, dedup_key=dedup_key, event_type=event_type, job_id=None, headers=headers, body=body,
            task=task,
        )  # fmt: skip
        row = await self._one(_STORE_CHAT_EVENT, {**params, "new_job_id": uuid.uuid4(), "chat_id": chat_id})
        return None if row is None else int(row[0])
