"""Usage reports: metered seconds (priced with HUME_PRICE_PER_MINUTE) and Audio Decisions input tokens, grouped
(app/store/usage_report.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.deps import Deps
from app.errors import InvalidInput
from app.store import usage_report
from app.usage.schemas import UsageGroup, UsagePage, UsageQuery, groupings


def _key(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def cost(seconds: float, price_per_minute: float | None) -> float | None:
    """Hume prices v1 per metered minute; None without a price."""
    return None if price_per_minute is None else round(seconds / 60.0 * price_per_minute, 6)


async def report(deps: Deps, query: UsageQuery, *, tenant: str | None) -> UsagePage:
    """One page of groups; `tenant` None: every tenant (an analyst or admin key of no single tenant)."""
    group_by = groupings(query.group_by)
    if query.since is not None and query.until is not None and query.until < query.since:
        raise InvalidInput("until", f"must not be before since ({query.since.isoformat()})")
    price = deps.settings.hume_price_per_minute
    async with deps.sessionmaker() as session:
        rows = await usage_report.usage_groups(
            session, group_by, tenant=tenant, since=query.since, until=query.until, limit=query.limit + 1,
            offset=query.offset,
        )  # fmt: skip
    more = len(rows) > query.limit
    items = [
        UsageGroup(
            group={name: _key(value) for name, value in zip(group_by, row.keys, strict=True)},
            metered_seconds=round(row.seconds, 3),
            estimated_seconds=round(row.estimated_seconds, 3),
            requests=row.requests,
            billed_by_hume=row.billed_by_hume,
            decision_input_tokens=row.decision_input_tokens,
            decision_windows=row.decision_windows,
            cost=cost(row.seconds, price),
        )
        for row in rows[: query.limit]
    ]
    return UsagePage(
        group_by=group_by, items=items, price_per_minute=price,
        next_offset=query.offset + query.limit if more else None,
    )  # fmt: skip
