"""Job rows: creation, monotonic state transitions, listing and the reconciler's due list."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import and_, case, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.job_status import ACTIVE, RANK, JobStatus
from app.store.tables import Job

_rank_sql = case(*((Job.status == s.value, r) for s, r in RANK.items()), else_=0)


async def create(session: AsyncSession, **fields: Any) -> Job:
    job = Job(id=fields.pop("id", None) or uuid.uuid4(), **fields)
    session.add(job)
    await session.flush()
    await session.refresh(job)
    return job


async def get(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    return await session.get(Job, job_id)


async def status_and_hume_id(connection: AsyncConnection[Any], job_id: uuid.UUID) -> tuple[str, str | None] | None:
    """A job's status and Hume id by one autocommit statement (a worker's look before it decides)."""
    cursor = await connection.execute("SELECT status, hume_job_id FROM job WHERE id = %(id)s", {"id": job_id})
    row = await cursor.fetchone()
    return None if row is None else (row[0], row[1])


async def current(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    """The row as this transaction sees it now (not a copy cached earlier in the session)."""
    query = select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def lock(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    """The row lock that serializes every writer of one job (callbacks, polls, retries)."""
    result = await session.execute(
        select(Job).where(Job.id == job_id).with_for_update().execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def by_idempotency_key(session: AsyncSession, api_key_id: uuid.UUID | None, key: str) -> Job | None:
    result = await session.execute(select(Job).where(Job.api_key_id == api_key_id, Job.idempotency_key == key))
    return result.scalar_one_or_none()


async def advance(session: AsyncSession, job_id: uuid.UUID, status: str, **fields: Any) -> bool:
    """Move a job to `status` (and set `fields`) only if that is a step forward; True if it moved."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, _rank_sql < RANK[JobStatus(status)])
        .values(status=str(status), updated_at=func.now(), **fields)
        .returning(Job.id)
    )
    return result.first() is not None


async def touch(session: AsyncSession, job_id: uuid.UUID, **fields: Any) -> None:
    """Update fields without changing the status."""
    await session.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now(), **fields))


async def page(
    session: AsyncSession,
    *,
    limit: int,
    cursor: tuple[datetime, uuid.UUID] | None = None,
    status: str | None = None,
    kind: str | None = None,
    hume_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    tenant: str | None = None,
) -> list[Job]:
    """Newest first; the cursor is the (created_at, id) of the last row of the previous page. `tenant`
    None means every tenant."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(Job.tenant == tenant)
    if cursor is not None:
        created_at, last_id = cursor
        query = query.where(or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < last_id)))
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if hume_id is not None:
        query = query.where(Job.hume_job_id == hume_id)
    if created_after is not None:
        query = query.where(Job.created_at >= created_after)
    if created_before is not None:
        query = query.where(Job.created_at < created_before)
    if metadata:
        query = query.where(Job.job_metadata.contains(metadata))
    return list((await session.execute(query)).scalars())


async def due_for_reconcile(session: AsyncSession, *, limit: int = 100) -> list[uuid.UUID]:
    """Batch jobs whose callback is overdue, and submissions that failed transiently."""
    query = (
        select(Job.id)
        .where(
            Job.kind == "batch",
            Job.status.in_(ACTIVE),
            Job.deadline_at < func.now(),
        )
        .order_by(Job.deadline_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def without_start_task(
    session: AsyncSession, lock_prefix: str, *, older_than_s: float, limit: int = 100
) -> list[uuid.UUID]:
    """Submitted jobs that only their start task moves (pending; in_progress on v1, whose task runs the whole
    job) and that have no such task waiting or running, unchanged for `older_than_s`."""
    # The queue's own table: procrastinate indexes queueing_lock for todo/doing tasks (its unique constraint).
    no_task = text(
        "NOT EXISTS (SELECT 1 FROM procrastinate_jobs p WHERE p.queueing_lock = :prefix || job.id::text"
        " AND p.status IN ('todo', 'doing'))"
    ).bindparams(prefix=lock_prefix)
    unchanged = text("job.updated_at < now() - make_interval(secs => :grace)").bindparams(grace=older_than_s)
    query = (
        select(Job.id)
        .where(
            Job.kind == "batch",
            or_(Job.status == "pending", and_(Job.status == "in_progress", Job.backend == "v1")),
            unchanged,
            no_task,
        )
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


def encode_cursor(job: Job) -> str:
    """The position after `job` in `page`'s order (newest first), opaque to clients."""
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    """`encode_cursor`'s inverse; ValueError when `raw` is not one."""
    created, _, job_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
    return datetime.fromisoformat(created), uuid.UUID(job_id)
