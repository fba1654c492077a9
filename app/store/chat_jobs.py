"""EVI chats in the job table: one job per chat, by Hume's chat id (created by the webhook intake)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.inbox_events import end_event_sql
from app.store.tables import Job

KIND = "evi_chat"


async def existing_chat_job(session: AsyncSession, chat_id: str) -> uuid.UUID | None:
    """The chat's job if one exists; never creates one."""
    found = await session.execute(select(Job.id).where(Job.kind == KIND, Job.hume_job_id == chat_id))
    return found.scalar_one_or_none()


# The chat-details rule, written once: fill only the details the job lacks (absent or null keys), never
# overwrite, so whichever event arrives first the result is the same. chat_started's one statement below also
# sets started_at once and ends the event; the UPDATE's row lock orders it with every other
# writer of the job. An event another run already marked done keeps that outcome.
_FILLED = """COALESCE(job.details, '{}'::jsonb) || COALESCE((
            SELECT jsonb_object_agg(new.key, new.value) FROM jsonb_each(%(details)s::jsonb) AS new
            WHERE new.value <> 'null'::jsonb
              AND COALESCE(job.details -> new.key, 'null'::jsonb) = 'null'::jsonb
        ), '{}'::jsonb)"""
_FILL = f"UPDATE job SET details = {_FILLED}, updated_at = now() WHERE job.id = %(job_id)s"
_START = (
    f"""
WITH touched AS (
    UPDATE job SET
        details = {_FILLED},
        started_at = COALESCE(job.started_at, %(started_at)s),
        updated_at = now()
    WHERE job.id = %(job_id)s
    RETURNING job.id
), ended AS (
    """
    + end_event_sql(
        "CASE WHEN EXISTS (SELECT FROM touched) THEN 'done' ELSE 'ignored' END",
        "CASE WHEN EXISTS (SELECT FROM touched) THEN NULL ELSE 'chat job no longer exists' END",
        "%(event_id)s",
    )
    + """
)
SELECT EXISTS (SELECT FROM touched)
"""
)


async def fill_details(session: AsyncSession, job_id: uuid.UUID, details: dict[str, Any]) -> None:
    """Add the chat details the job lacks (the rule above), in the session's transaction."""
    connection = await session.connection()
    await connection.exec_driver_sql(_FILL, {"job_id": job_id, "details": orjson.dumps(details).decode()})


async def start_chat(
    connection: AsyncConnection[Any], job_id: uuid.UUID, event_id: int, details: dict[str, Any],
    started_at: datetime | None,
) -> bool:  # fmt: skip
    """Apply a chat_started event to its job and end the event, in one autocommit statement: the worker's
    most frequent event costs one round trip instead of a transaction of five. False: the job is gone."""
    details_json = orjson.dumps(details).decode()
    params = {"job_id": job_id, "event_id": event_id, "details": details_json, "started_at": started_at}
    cursor = await connection.execute(_START, params, prepare=False)
    row = await cursor.fetchone()
    return bool(row and row[0])
