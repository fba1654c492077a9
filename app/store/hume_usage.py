"""Hume-metered seconds: each v1 request's cost reserved against its tenant's daily budget before it is sent,
settled when Hume answers, and summed per job and per tenant.

A reservation is one statement: it raises the tenant's total for the UTC day only while the total stays
within the limit (the row lock of ON CONFLICT DO UPDATE serialises concurrent reservations, each seeing the
total the one before it left), and records the request in the same statement. So any number of workers
together never pass a tenant's limit. A limit of 0 means none; the day's total is still kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Sums of thirds of a second (video) in float8 carry rounding noise: a request that fits exactly must pass.
_EPSILON = 1e-6

_RESERVE = text("""
WITH lim AS (
    SELECT j.tenant, COALESCE(b.daily_seconds, :default_limit) AS limit_seconds,
           (now() AT TIME ZONE 'UTC')::date AS day
    FROM job j LEFT JOIN hume_tenant_budget b ON b.tenant = j.tenant
    WHERE j.id = :job_id
), charged AS (
    INSERT INTO hume_tenant_day AS d (tenant, day, seconds, limit_seconds)
    SELECT tenant, day, :seconds, limit_seconds FROM lim
    WHERE limit_seconds = 0 OR :seconds <= limit_seconds + :epsilon
    ON CONFLICT (tenant, day) DO UPDATE
        SET seconds = d.seconds + EXCLUDED.seconds, limit_seconds = EXCLUDED.limit_seconds
        WHERE EXCLUDED.limit_seconds = 0 OR d.seconds + EXCLUDED.seconds <= EXCLUDED.limit_seconds + :epsilon
    RETURNING tenant, day
)
INSERT INTO hume_usage (job_id, tenant, day, source_index, medium, chunk, seconds)
SELECT :job_id, tenant, day, :source_index, :medium, :chunk, :seconds FROM charged
RETURNING id
""")

_REFUSAL = text("""
SELECT j.tenant, COALESCE(b.daily_seconds, :default_limit) AS limit_seconds, (now() AT TIME ZONE 'UTC')::date AS day,
       COALESCE((SELECT d.seconds FROM hume_tenant_day d
                 WHERE d.tenant = j.tenant AND d.day = (now() AT TIME ZONE 'UTC')::date), 0) AS spent
FROM job j LEFT JOIN hume_tenant_budget b ON b.tenant = j.tenant
WHERE j.id = :job_id
""")

_RELEASE = text("""
WITH gone AS (DELETE FROM hume_usage WHERE id = :id RETURNING tenant, day, seconds)
UPDATE hume_tenant_day d SET seconds = GREATEST(0, d.seconds - gone.seconds)
FROM gone WHERE d.tenant = gone.tenant AND d.day = gone.day
""")


@dataclass(frozen=True)
class DayBudget:
    """A tenant's budget on one UTC day."""

    tenant: str
    day: date
    limit_seconds: int
    """0: no limit."""
    spent_seconds: float
    override: bool = False
    """The limit is the tenant's own (set with `python -m app tenant-budget`), not HUME_TENANT_DAILY_SECONDS."""

    @property
    def resets_at(self) -> datetime:
        """When the next UTC day starts, and with it a new budget."""
        return datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=UTC)


async def reserve(
    session: AsyncSession, job_id: uuid.UUID, source_index: int, medium: str, chunk: int, seconds: float,
    *, default_limit: int,
) -> int | DayBudget:  # fmt: skip
    """Charge one request's `seconds` to the job's tenant today: its usage id, or (nothing charged) the day's
    budget that it would overspend."""
    params = {
        "job_id": job_id, "source_index": source_index, "medium": medium, "chunk": chunk, "seconds": seconds,
        "default_limit": default_limit, "epsilon": _EPSILON,
    }  # fmt: skip
    usage_id = (await session.execute(_RESERVE, params)).scalar_one_or_none()
    if usage_id is not None:
        return int(usage_id)
    row = (await session.execute(_REFUSAL, {"job_id": job_id, "default_limit": default_limit})).one_or_none()
    if row is None:
        raise LookupError(f"no job {job_id}")
    return DayBudget(tenant=row.tenant, day=row.day, limit_seconds=int(row.limit_seconds), spent_seconds=row.spent)


async def billed(session: AsyncSession, usage_id: int, *, request_id: str, run_id: str) -> None:
    """Hume answered the request with a result: it is billed, under this run."""
    await session.execute(
        text("UPDATE hume_usage SET state = 'billed', request_id = :request_id, run_id = :run_id WHERE id = :id"),
        {"id": usage_id, "request_id": request_id, "run_id": run_id},
    )


async def release(session: AsyncSession, usage_id: int) -> None:
    """Hume answered the request with an error, which it bills 0: the reservation is given back."""
    await session.execute(_RELEASE, {"id": usage_id})


async def job_seconds(session: AsyncSession, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, float]:
    """Metered seconds spent per job (requests billed, and sent ones never answered: those may be billed)."""
    ids = list(job_ids)
    if not ids:
        return {}
    rows = await session.execute(
        text("SELECT job_id, sum(seconds) AS seconds FROM hume_usage WHERE job_id = ANY(:ids) GROUP BY job_id"),
        {"ids": ids},
    )
    return {r.job_id: float(r.seconds) for r in rows}


async def set_tenant_limit(session: AsyncSession, tenant: str, daily_seconds: int | None) -> None:
    """Set a tenant's own daily limit (0: none), or with None remove it (HUME_TENANT_DAILY_SECONDS applies)."""
    if daily_seconds is None:
        await session.execute(text("DELETE FROM hume_tenant_budget WHERE tenant = :tenant"), {"tenant": tenant})
        return
    await session.execute(
        text(
            "INSERT INTO hume_tenant_budget (tenant, daily_seconds) VALUES (:tenant, :seconds)"
            " ON CONFLICT (tenant) DO UPDATE SET daily_seconds = EXCLUDED.daily_seconds, updated_at = now()"
        ),
        {"tenant": tenant, "seconds": daily_seconds},
    )


async def tenant_today(session: AsyncSession, tenant: str, *, default_limit: int) -> DayBudget:
    """A tenant's budget and spending for the current UTC day."""
    row = (
        await session.execute(
            text(
                "SELECT b.daily_seconds, (now() AT TIME ZONE 'UTC')::date AS day,"
                " COALESCE((SELECT d.seconds FROM hume_tenant_day d WHERE d.tenant = :tenant"
                " AND d.day = (now() AT TIME ZONE 'UTC')::date), 0) AS spent"
                " FROM (SELECT 1) one LEFT JOIN hume_tenant_budget b ON b.tenant = :tenant"
            ),
            {"tenant": tenant},
        )
    ).one()
    override = row.daily_seconds is not None
    return DayBudget(
        tenant=tenant, day=row.day, limit_seconds=int(row.daily_seconds if override else default_limit),
        spent_seconds=float(row.spent), override=override,
    )  # fmt: skip
