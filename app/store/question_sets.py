"""Question sets: a tenant's versions of each set. A version is written once and never changed, except to
archive its family; an edit is the next version of the same family (see migration 0016)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.store.tables import QuestionSet


async def create(
    session: AsyncSession, *, tenant: str, name: str, context: str | None, questions: list[dict[str, Any]]
) -> QuestionSet:
    """Version 1 of a new family."""
    set_id = uuid.uuid4()
    row = QuestionSet(id=set_id, family_id=set_id, version=1, tenant=tenant, name=name, context=context,
                      questions=questions)  # fmt: skip
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def get(session: AsyncSession, set_id: uuid.UUID, *, tenant: str | None) -> QuestionSet | None:
    """A version by id, if `tenant` (None: any tenant) owns it."""
    row = await session.get(QuestionSet, set_id)
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    return row


async def latest(session: AsyncSession, family_id: uuid.UUID) -> QuestionSet:
    query = select(QuestionSet).where(QuestionSet.family_id == family_id).order_by(QuestionSet.version.desc()).limit(1)
    return (await session.execute(query)).scalar_one()


async def add_version(
    session: AsyncSession, base: QuestionSet, *, name: str, context: str | None, questions: list[dict[str, Any]]
) -> QuestionSet | None:
    """The next version of `base`'s family, unless `base` is no longer its newest (None: another edit came
    first). Edits of one family are serialized by a transaction-scoped advisory lock on the family."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:family AS text), 0))"), {"family": base.family_id}
    )
    newest = await session.scalar(select(func.max(QuestionSet.version)).where(QuestionSet.family_id == base.family_id))
    if newest != base.version:
        return None
    row = QuestionSet(id=uuid.uuid4(), family_id=base.family_id, version=base.version + 1, tenant=base.tenant,
                      name=name, context=context, questions=questions)  # fmt: skip
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def versions(session: AsyncSession, family_id: uuid.UUID) -> list[QuestionSet]:
    query = select(QuestionSet).where(QuestionSet.family_id == family_id).order_by(QuestionSet.version)
    return list((await session.execute(query)).scalars())


async def archive(session: AsyncSession, family_id: uuid.UUID) -> None:
    """Archive every version of the family (a later archive keeps the first time)."""
    await session.execute(
        update(QuestionSet)
        .where(QuestionSet.family_id == family_id, QuestionSet.archived_at.is_(None))
        .values(archived_at=datetime.now(UTC))
    )


async def newest_of_families(
    session: AsyncSession,
    *,
    tenant: str | None,
    archived: bool,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[QuestionSet]:
    """Each family's newest version, newest first by when that version was written; keyset-paged by
    (created_at, id) of the last row of the previous page."""
    newer = aliased(QuestionSet)
    query = select(QuestionSet).where(
        ~exists().where(newer.family_id == QuestionSet.family_id, newer.version > QuestionSet.version)
    )
    if tenant is not None:
        query = query.where(QuestionSet.tenant == tenant)
    if not archived:
        query = query.where(QuestionSet.archived_at.is_(None))
    if before is not None:
        query = query.where(
            (QuestionSet.created_at < before[0])
            | ((QuestionSet.created_at == before[0]) & (QuestionSet.id < before[1]))
        )
    query = query.order_by(QuestionSet.created_at.desc(), QuestionSet.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


def encode_cursor(row: QuestionSet) -> str:
    """The position after `row` in `newest_of_families`' order, opaque to clients."""
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    """`encode_cursor`'s inverse; ValueError when `raw` is not one."""
    created, _, set_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
    return datetime.fromisoformat(created), uuid.UUID(set_id)
