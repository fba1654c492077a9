"""A tenant's daily budgets (Hume-metered seconds; Audio Decisions input tokens), as callers meet them: the
refusal a v1 file request, a live session or a decision job gets when the day is spent (the rule itself is one
statement in app/store/hume_usage.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from app.errors import AppError
from app.store import hume_usage
from app.store.hume_usage import SECONDS, DayBudget, Meter

BUDGET_EXHAUSTED = "hume_budget_exhausted"
"""The error code of a job stopped, a session refused or ended, and a token refused by its tenant's budget."""


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def spent_message(budget: DayBudget, needed: float, what: str) -> str:
    """Who spent what of which limit, what `what` needed, and when the budget resets."""
    meter = budget.meter
    source = "its own limit" if budget.override else meter.setting
    spent = f"{budget.spent:.1f}" if meter is SECONDS else f"{round(budget.spent)}"
    return (
        f"tenant {budget.tenant!r} has spent {spent} of its {budget.limit} "
        f"{meter.what} for {budget.day.isoformat()} (UTC; {source}); {what} needs {meter.amount(needed)}. "
        f"The budget resets at {_iso(budget.resets_at)}."
    )


def close_reason(budget: DayBudget) -> str:
    """The same, short enough for a WebSocket close frame (123 bytes; the tenant's name is left out)."""
    return f"Hume budget for {budget.day.isoformat()} spent; resets {_iso(budget.resets_at)}"


def retry_after_s(budget: DayBudget, now: datetime | None = None) -> int:
    """Whole seconds until the budget resets (at least 1)."""
    left = (budget.resets_at - (now or datetime.now(UTC))).total_seconds()
    return max(1, int(left) + 1)


class BudgetExhausted(Exception):
    """The tenant's daily budget cannot pay for the next request: a v1 file request's seconds, or a decision
    window's input tokens (`budget.meter`)."""

    code = BUDGET_EXHAUSTED

    def __init__(self, budget: DayBudget, needed: float) -> None:
        self.budget = budget
        self.needed = needed
        super().__init__(spent_message(budget, needed, "the next request"))


async def reserve_or_refuse(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, source: int, medium: str, chunk: int,
    amount: float, *, limit: int, meter: Meter = SECONDS,
) -> int:  # fmt: skip
    """Reserve one request's `amount` against its job's tenant's day, in a transaction of its own: its usage
    id, or BudgetExhausted (nothing reserved; the refusal counted under `medium`)."""
    async with sessionmaker.begin() as session:
        reserved = await hume_usage.reserve(
            session, job_id, source, medium, chunk, amount, default_limit=limit, meter=meter
        )
    if isinstance(reserved, DayBudget):
        metrics.HUME_TENANT_BUDGET_REFUSALS.labels(endpoint=medium).inc()
        raise BudgetExhausted(reserved, amount)
    return reserved


class BudgetSpent(AppError):
    """The tenant's daily budget (of Hume-metered seconds, or of decision input tokens: `budget.meter`) is spent
    (429 with Retry-After until it resets). `details` name the limit and spending in its unit: `limit_seconds`
    and `spent_seconds`, or `limit_input_tokens` and `spent_input_tokens`."""

    status = 429
    code = BUDGET_EXHAUSTED

    def __init__(self, budget: DayBudget, needed: float, what: str) -> None:
        unit = budget.meter.unit
        super().__init__(
            spent_message(budget, needed, what),
            details={"tenant": budget.tenant, "day": budget.day.isoformat(), f"limit_{unit}": budget.limit,
                     f"spent_{unit}": round(budget.spent, 3), "resets_at": _iso(budget.resets_at)},
            headers={"Retry-After": str(retry_after_s(budget))},
        )  # fmt: skip
