"""Hume-metered seconds: each v1 request's cost reserved against its tenant's daily budget before it is sent,
settled when Hume answers, replaced by what Hume's runs API says it billed once that is read, and summed per
job and per tenant.

A reservation is one statement: it raises the tenant's total for the UTC day only while the total stays
within the limit (the row lock of ON CONFLICT DO UPDATE serialises concurrent reservations, each seeing the
total the one before it left), and records the request in the same statement. So any number of workers
together never pass a tenant's limit. A limit of 0 means none; the day's total is still kept.

Two things are budgeted this way, each a `Meter`: Hume-metered seconds (v1 file requests and live sessions,
HUME_TENANT_DAILY_SECONDS) and Audio Decisions input tokens (a decision job's windows,
HUME_TENANT_DAILY_DECISION_TOKENS; migration 0020). Both are one rule and one reservation statement, written once
and given the meter's columns; a row counts one or the other (a decisions row's seconds are 0). A tenant may have
its own limit of either (`hume_tenant_budget`, a nullable column per meter, migration 0021; NULL: the setting).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import tenant_settings

# Sums of thirds of a second (video) in float8 carry rounding noise: a request that fits exactly must pass.
_EPSILON = 1e-6


@dataclass(frozen=True)
class Meter:
    """What a daily budget counts: the column of `hume_usage` and of `hume_tenant_day` holding it (`unit`), the
    day's limit column, the column of `hume_tenant_budget` holding a tenant's own limit, and the setting behind
    it."""

    unit: str
    limit_column: str
    override_column: str
    setting: str
    what: str
    """How a refusal names it."""

    @property
    def override(self) -> str:
        """The tenant's own limit, as SQL over `hume_tenant_budget b` (NULL: the setting applies)."""
        return f"b.{self.override_column}"

    def amount(self, value: float) -> str:
        return f"{value:.1f} s" if self.unit == "seconds" else f"{round(value)} tokens"


SECONDS = Meter("seconds", "limit_seconds", "daily_seconds", "HUME_TENANT_DAILY_SECONDS", "Hume-metered seconds")
INPUT_TOKENS = Meter(
    "input_tokens", "limit_input_tokens", "daily_input_tokens", "HUME_TENANT_DAILY_DECISION_TOKENS",
    "Audio Decisions input tokens",
)  # fmt: skip
METERS = (SECONDS, INPUT_TOKENS)


# The budget's one rule, for a charge of :amount against a day's total and limit: a limit of 0 is none, else the
# total after the charge stays within it. File requests and decision windows (reserve) and live sessions (grow)
# are charged by it.
_WITHIN = "({limit} = 0 OR {total} + :amount <= {limit} + CAST(:epsilon AS float8))"


def _reserve_statement(meter: Meter) -> TextClause:
    """Charge :amount of `meter` to the job's tenant today, only within the day's limit, and record the request
    (a usage row holding the amount) in the same statement; no row comes back when the day cannot pay."""
    unit, limit = meter.unit, meter.limit_column
    return text(f"""
WITH lim AS (
    SELECT j.tenant, COALESCE({meter.override}, :default_limit) AS day_limit,
           (now() AT TIME ZONE 'UTC')::date AS day
    FROM job j LEFT JOIN hume_tenant_budget b ON b.tenant = j.tenant
    WHERE j.id = :job_id
), charged AS (
    INSERT INTO hume_tenant_day AS d (tenant, day, {unit}, {limit})
    SELECT tenant, day, :amount, day_limit FROM lim
    WHERE {_WITHIN.format(limit="day_limit", total="0")}
    ON CONFLICT (tenant, day) DO UPDATE
        SET {unit} = d.{unit} + EXCLUDED.{unit}, {limit} = EXCLUDED.{limit}
        WHERE {_WITHIN.format(limit=f"EXCLUDED.{limit}", total=f"d.{unit}")}
    RETURNING tenant, day
)
INSERT INTO hume_usage (job_id, tenant, day, source_index, medium, chunk, {unit})
SELECT :job_id, tenant, day, :source_index, :medium, :chunk, :amount FROM charged
RETURNING id
""")


def _refusal_statement(meter: Meter) -> TextClause:
    return text(f"""
SELECT j.tenant, COALESCE({meter.override}, :default_limit) AS day_limit, {meter.override} IS NOT NULL AS override,
       (now() AT TIME ZONE 'UTC')::date AS day,
       COALESCE((SELECT d.{meter.unit} FROM hume_tenant_day d
                 WHERE d.tenant = j.tenant AND d.day = (now() AT TIME ZONE 'UTC')::date), 0) AS spent
FROM job j LEFT JOIN hume_tenant_budget b ON b.tenant = j.tenant
WHERE j.id = :job_id
""")


_RESERVE = {meter.unit: _reserve_statement(meter) for meter in METERS}
_REFUSAL = {meter.unit: _refusal_statement(meter) for meter in METERS}

# A live session's reservation raised by :amount seconds under the same rule, on the UTC day it opened (its run started
# then); the day's row lock orders it against every other charge of the tenant.
_GROW = text(f"""
WITH lim AS (
    SELECT u.tenant, u.day, COALESCE(b.daily_seconds, :default_limit) AS limit_seconds
    FROM hume_usage u LEFT JOIN hume_tenant_budget b ON b.tenant = u.tenant
    WHERE u.id = :id
), charged AS (
    UPDATE hume_tenant_day d SET seconds = d.seconds + :amount, limit_seconds = lim.limit_seconds
    FROM lim WHERE d.tenant = lim.tenant AND d.day = lim.day
        AND {_WITHIN.format(limit="lim.limit_seconds", total="d.seconds")}
    RETURNING d.tenant
)
UPDATE hume_usage SET seconds = seconds + :amount WHERE id = :id AND EXISTS (SELECT 1 FROM charged) RETURNING id
""")

_GROW_REFUSAL = text("""
SELECT u.tenant, COALESCE(b.daily_seconds, :default_limit) AS day_limit, b.daily_seconds IS NOT NULL AS override,
       u.day, COALESCE(d.seconds, 0) AS spent
FROM hume_usage u LEFT JOIN hume_tenant_budget b ON b.tenant = u.tenant
     LEFT JOIN hume_tenant_day d ON d.tenant = u.tenant AND d.day = u.day
WHERE u.id = :id
""")

_RELEASE = text("""
WITH gone AS (DELETE FROM hume_usage WHERE id = :id RETURNING tenant, day, seconds, input_tokens)
UPDATE hume_tenant_day d SET seconds = GREATEST(0, d.seconds - gone.seconds),
    input_tokens = GREATEST(0, d.input_tokens - COALESCE(gone.input_tokens, 0))
FROM gone WHERE d.tenant = gone.tenant AND d.day = gone.day
""")


@dataclass(frozen=True)
class DayBudget:
    """A tenant's budget on one UTC day."""

    tenant: str
    day: date
    limit: int
    """0: no limit."""
    spent: float
    override: bool = False
    """The limit is the tenant's own (set with `python -m app tenant-budget`), not the meter's setting."""
    meter: Meter = SECONDS

    def affords(self, amount: float) -> bool:
        """Whether `amount` more fit in the day (_WITHIN's rule, for a check before anything is charged)."""
        return self.limit == 0 or self.spent + amount <= self.limit + _EPSILON

    @property
    def resets_at(self) -> datetime:
        """When the next UTC day starts, and with it a new budget."""
        return datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=UTC)


async def reserve(
    session: AsyncSession, job_id: uuid.UUID, source_index: int, medium: str, chunk: int, amount: float,
    *, default_limit: int, meter: Meter = SECONDS,
) -> int | DayBudget:  # fmt: skip
    """Charge one request's `amount` of `meter` to the job's tenant today: its usage id, or (nothing charged)
    the day's budget that it would overspend."""
    params = {
        "job_id": job_id, "source_index": source_index, "medium": medium, "chunk": chunk, "amount": amount,
        "default_limit": default_limit, "epsilon": _EPSILON,
    }  # fmt: skip
    usage_id = (await session.execute(_RESERVE[meter.unit], params)).scalar_one_or_none()
    if usage_id is not None:
        return int(usage_id)
    return await _refusal(session, job_id, default_limit, meter)


async def _refusal(session: AsyncSession, job_id: uuid.UUID, default_limit: int, meter: Meter) -> DayBudget:
    params = {"job_id": job_id, "default_limit": default_limit}
    row = (await session.execute(_REFUSAL[meter.unit], params)).one_or_none()
    if row is None:
        raise LookupError(f"no job {job_id}")
    return _budget(row, meter)


def _budget(row: Any, meter: Meter = SECONDS) -> DayBudget:
    return DayBudget(tenant=row.tenant, day=row.day, limit=int(row.day_limit), spent=float(row.spent),
                     override=bool(row.override), meter=meter)  # fmt: skip


async def grow(session: AsyncSession, usage_id: int, seconds: float, *, default_limit: int) -> DayBudget | None:
    """Raise a live session's reservation (its usage row) by `seconds` within its tenant's budget for the day it
    opened: None, or (nothing charged) that day's budget, which it would overspend."""
    params = {"id": usage_id, "amount": seconds, "default_limit": default_limit, "epsilon": _EPSILON}
    if (await session.execute(_GROW, params)).scalar_one_or_none() is not None:
        return None
    return _budget((await session.execute(_GROW_REFUSAL, {"id": usage_id, "default_limit": default_limit})).one())


async def session_run(session: AsyncSession, usage_id: int, run_id: str) -> None:
    """Hume opened the live session reserved under `usage_id` as the run `run_id` (its session_id,
    HUME-V1-FACTS §8): the run is ours from now on (see owned_runs), though its bill is read once it ends."""
    await session.execute(
        text("UPDATE hume_usage SET run_id = :run_id, state = 'billed' WHERE id = :id"),
        {"id": usage_id, "run_id": run_id},
    )


# The reservation becomes the estimate (the day's total moves by the difference, as in _SETTLE), and the run, if
# Hume named one and it cost anything, is due to be read like a file request's.
_END_SESSION_RUN = text("""
WITH old AS (
    SELECT id, tenant, day, seconds, run_id FROM hume_usage WHERE id = :id AND billing = 'estimate' FOR UPDATE
), ended AS (
    UPDATE hume_usage u SET seconds = :seconds,
        billing = CASE WHEN old.run_id IS NOT NULL AND :seconds > 0 THEN 'pending' ELSE 'estimate' END,
        billing_due_at = CASE WHEN old.run_id IS NOT NULL AND :seconds > 0 THEN now() + make_interval(secs => :in_s) END
    FROM old WHERE u.id = old.id
    RETURNING u.billing
), day AS (
    UPDATE hume_tenant_day d SET seconds = GREATEST(0, d.seconds + :seconds - old.seconds)
    FROM old WHERE d.tenant = old.tenant AND d.day = old.day
)
SELECT billing FROM ended
""")


async def end_session_run(session: AsyncSession, usage_id: int, seconds: float, *, read_in_s: float) -> bool:
    """A live session ended having taken in what Hume bills `seconds` for (our estimate): that replaces its
    reservation, for it and its tenant's day. True when its run is to be read from Hume in `read_in_s` (Hume
    named the run and it took media; a run that took none is billed 0, HUME-V1-FACTS §6)."""
    billing = (
        await session.execute(_END_SESSION_RUN, {"id": usage_id, "seconds": seconds, "in_s": read_in_s})
    ).scalar_one_or_none()
    return billing == "pending"


async def read_session_runs(session: AsyncSession, job_ids: Iterable[uuid.UUID], *, in_s: float) -> int:
    """Live sessions that ended without their relay (its process died): each run Hume named is read in `in_s`,
    its reservation standing as the estimate until then. Returns the runs due."""
    ids = list(job_ids)
    if not ids:
        return 0
    rows = await session.execute(
        text(
            "UPDATE hume_usage SET billing = 'pending', billing_due_at = now() + make_interval(secs => :in_s)"
            " WHERE job_id = ANY(:ids) AND run_id IS NOT NULL AND billing = 'estimate' AND billing_tries = 0"
            " RETURNING id"
        ),
        {"ids": ids, "in_s": in_s},
    )
    return len(rows.all())


async def billed(session: AsyncSession, usage_id: int, *, request_id: str, run_id: str, read_in_s: float) -> None:
    """Hume answered the request with a result: it is billed, under this run, whose billed seconds are read
    from Hume's runs API in `read_in_s` (until then the estimate counts)."""
    await session.execute(
        text(
            "UPDATE hume_usage SET state = 'billed', request_id = :request_id, run_id = :run_id,"
            " billing = 'pending', billing_due_at = now() + make_interval(secs => :in_s) WHERE id = :id"
        ),
        {"id": usage_id, "request_id": request_id, "run_id": run_id, "in_s": read_in_s},
    )


@dataclass(frozen=True)
class RunToRead:
    usage_id: int
    run_id: str
    tries: int
    """Reads of this run before this one."""
    reserved_at: datetime
    """When the request was reserved, just before it was sent: its run started after this."""
    medium: str
    """audio or video: Hume's endpoint."""


async def claim_runs(session: AsyncSession, *, limit: int, lease_s: float) -> list[RunToRead]:
    """Up to `limit` runs whose billed seconds are due to be read, oldest due first. Each is leased: its due
    time moves `lease_s` ahead, so a reader that dies leaves it to be read again then, and two readers at
    once take different runs (SKIP LOCKED)."""
    rows = await session.execute(
        text(
            "WITH due AS (SELECT id FROM hume_usage WHERE billing = 'pending' AND billing_due_at <= now()"
            " ORDER BY billing_due_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
            " UPDATE hume_usage u SET billing_due_at = now() + make_interval(secs => :lease)"
            " FROM due WHERE u.id = due.id RETURNING u.id, u.run_id, u.billing_tries, u.created_at, u.medium"
        ),
        {"limit": limit, "lease": lease_s},
    )
    return [RunToRead(r.id, r.run_id, r.billing_tries, r.created_at, r.medium) for r in rows]


# Hume's figure replaces the estimate in the row and in the tenant's day, in one statement: the day's row lock
# orders this against concurrent reservations, so the day's total is always the sum of what counts.
_SETTLE = text("""
WITH settled AS (
    UPDATE hume_usage SET billed_seconds = :billed, billing = 'hume', billing_due_at = NULL,
                          billing_tries = billing_tries + 1
    WHERE id = :id AND billing = 'pending'
    RETURNING tenant, day, seconds
)
UPDATE hume_tenant_day d SET seconds = GREATEST(0, d.seconds + :billed - settled.seconds)
FROM settled WHERE d.tenant = settled.tenant AND d.day = settled.day
""")


async def settle(session: AsyncSession, usage_id: int, billed_seconds: float) -> None:
    """Hume's billed seconds for the request: they count from now on, for its job and its tenant's day."""
    await session.execute(_SETTLE, {"id": usage_id, "billed": billed_seconds})


async def read_later(session: AsyncSession, usage_id: int, *, in_s: float, counted: bool = True) -> None:
    """The run could not be read yet: read it again in `in_s` (`counted`: this read was one of its tries)."""
    await session.execute(
        text(
            "UPDATE hume_usage SET billing_tries = billing_tries + :n,"
            " billing_due_at = now() + make_interval(secs => :in_s) WHERE id = :id AND billing = 'pending'"
        ),
        {"id": usage_id, "in_s": in_s, "n": 1 if counted else 0},
    )


async def keep_estimate(session: AsyncSession, usage_id: int) -> None:
    """Hume never listed the run within the reader's tries: our estimate stands, marked `estimate`."""
    await session.execute(
        text(
            "UPDATE hume_usage SET billing = 'estimate', billing_tries = billing_tries + 1, billing_due_at = NULL"
            " WHERE id = :id AND billing = 'pending'"
        ),
        {"id": usage_id},
    )


async def next_read_in(session: AsyncSession) -> float | None:
    """Seconds until the next run is due to be read (0 if one is due now); None when none waits."""
    value = (
        await session.execute(
            text(
                # No GREATEST(0, ...) here: it skips NULLs, so "none waits" (min() of no rows) read as "one is
                # due now" and the reader queued itself again at once, for good.
                "SELECT EXTRACT(EPOCH FROM min(billing_due_at) - now()) FROM hume_usage WHERE billing = 'pending'"
            )
        )
    ).scalar_one_or_none()
    return None if value is None else max(0.0, float(value))


async def owned_runs(session: AsyncSession, run_ids: Iterable[str]) -> set[str]:
    """Those of `run_ids` that a request of one of our jobs was answered under."""
    ids = list(run_ids)
    if not ids:
        return set()
    rows = await session.execute(text("SELECT run_id FROM hume_usage WHERE run_id = ANY(:ids)"), {"ids": ids})
    return {r.run_id for r in rows}


async def claim_check(session: AsyncSession, name: str, *, every_s: float) -> bool:
    """Claim the periodic check `name` if it has not run in the last `every_s` seconds (by any process)."""
    claimed = await session.execute(
        text(
            "INSERT INTO hume_run_check (name, ran_at) VALUES (:name, now()) ON CONFLICT (name) DO UPDATE"
            " SET ran_at = now() WHERE hume_run_check.ran_at <= now() - make_interval(secs => :every)"
            " RETURNING ran_at"
        ),
        {"name": name, "every": every_s},
    )
    return claimed.scalar_one_or_none() is not None


# A decision window's reservation becomes what Hume's answer says it billed (`received.input_tokens`, D/billing),
# for the row and its tenant's day in one statement, as _SETTLE does for seconds; an answer without the figure
# keeps the estimate (marked so).
_ANSWERED_WINDOW = text("""
WITH old AS (
    SELECT id, tenant, day, input_tokens FROM hume_usage WHERE id = :id AND state = 'sent' FOR UPDATE
), answered AS (
    UPDATE hume_usage u SET input_tokens = COALESCE(CAST(:tokens AS bigint), old.input_tokens), state = 'billed',
        run_id = :run_id, billing = CASE WHEN CAST(:tokens AS bigint) IS NULL THEN 'estimate' ELSE 'hume' END
    FROM old WHERE u.id = old.id
    RETURNING u.id
)
UPDATE hume_tenant_day d
SET input_tokens = GREATEST(0, d.input_tokens + COALESCE(CAST(:tokens AS bigint), old.input_tokens) - old.input_tokens)
FROM old WHERE d.tenant = old.tenant AND d.day = old.day
""")


async def answered_window(session: AsyncSession, usage_id: int, input_tokens: int | None, run_id: str | None) -> None:
    """Hume answered a decision window, billing `input_tokens` (None: not reported, the estimate stands): the
    figure replaces the reservation, for the window and its tenant's day."""
    await session.execute(_ANSWERED_WINDOW, {"id": usage_id, "tokens": input_tokens, "run_id": run_id})


async def release(session: AsyncSession, usage_id: int) -> None:
    """Hume answered the request with an error, which it bills 0: the reservation is given back."""
    await session.execute(_RELEASE, {"id": usage_id})


async def job_seconds(session: AsyncSession, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, float]:
    """Metered seconds spent per job (requests billed, and sent ones never answered: those may be billed):
    Hume's figure where it was read, else the estimate."""
    ids = list(job_ids)
    if not ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT job_id, sum(COALESCE(billed_seconds, seconds)) AS seconds FROM hume_usage"
            " WHERE job_id = ANY(:ids) GROUP BY job_id"
        ),
        {"ids": ids},
    )
    return {r.job_id: float(r.seconds) for r in rows}


async def set_tenant_limit(session: AsyncSession, tenant: str, daily: int | None, *, meter: Meter = SECONDS) -> None:
    """Set a tenant's own daily limit of `meter` (0: none), or with None remove it (the meter's setting applies);
    its limit of the other meter stays as it is."""
    others = tuple(m.override_column for m in METERS if m is not meter)
    await tenant_settings.set_own(session, "hume_tenant_budget", meter.override_column, tenant, daily, others=others)


async def tenant_today(session: AsyncSession, tenant: str, *, default_limit: int, meter: Meter = SECONDS) -> DayBudget:
    """A tenant's budget of `meter` and its spending for the current UTC day."""
    row = (
        await session.execute(
            text(
                f"SELECT {meter.override} AS own, (now() AT TIME ZONE 'UTC')::date AS day,"
                f" COALESCE((SELECT d.{meter.unit} FROM hume_tenant_day d WHERE d.tenant = :tenant"
                " AND d.day = (now() AT TIME ZONE 'UTC')::date), 0) AS spent"
                " FROM (SELECT 1) one LEFT JOIN hume_tenant_budget b ON b.tenant = :tenant"
            ),
            {"tenant": tenant},
        )
    ).one()
    override = row.own is not None
    return DayBudget(
        tenant=tenant, day=row.day, limit=int(row.own if override else default_limit), spent=float(row.spent),
        override=override, meter=meter,
    )  # fmt: skip
