"""Spending a tenant's daily budget of Audio Decisions input tokens (HUME_TENANT_DAILY_DECISION_TOKENS), as a v1
file request spends seconds (app/v1/hume_spend.py): each window's tokens are reserved against the tenant's UTC day
before it is sent, under the same rule and statement (app/store/hume_usage.py), and the reservation is replaced by
what Hume's answer says it billed (`received.input_tokens`, D/billing).

The estimate is Hume's own: its input_tokens endpoint, free (D/billing) and asked once per window length in a
run, since tokens depend on the audio's duration and the questions only (D/billing); it is the figure
`decisions.estimate` answers too. The limit is the tenant's own when it has one (`python -m app tenant-budget
TENANT --decision-tokens N`), else the setting. Without a limit none is asked (each is one of the organization's
600 requests a minute, C/2026/11/6): 0 is reserved and Hume's figure replaces it, so the day's tokens are counted
anyway.

A 4xx answer is not billed (D/billing: "4xx requests are not billed"): its reservation is given back. A 5xx or
no answer at all keeps it, since Hume may have billed: the budget errs on the side of spending less.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core import metrics
from app.deps import Deps
from app.hume.decisions import DecisionsError, DecisionsResult
from app.media.windows import AudioWindow
from app.store import hume_usage
from app.store.hume_usage import INPUT_TOKENS
from app.usage.budget import BudgetSpent, reserve_or_refuse

MEDIUM = "decisions"
"""A decision window's `hume_usage.medium` (and its budget refusals' metric label)."""
SUBMITTING = "a decision job"
"""What a submission needs, in its refusal: at least one token."""


def daily_limit(settings: Settings) -> int:
    """The setting's daily tokens per tenant (0: none, also when unset); a tenant's own limit overrides it."""
    return settings.hume_tenant_daily_decision_tokens or 0


async def check_can_submit(session: AsyncSession, settings: Settings, tenant: str) -> None:
    """BudgetSpent (429) when the tenant's day has no token left: the job would be stopped at its first window."""
    today = await hume_usage.tenant_today(session, tenant, default_limit=daily_limit(settings), meter=INPUT_TOKENS)
    if not today.affords(1):
        raise BudgetSpent(today, 1, SUBMITTING)


async def metered(
    deps: Deps, job_id: uuid.UUID, tenant: str, source: int, window: AudioWindow,
    estimate: Callable[[int], Awaitable[int]], send: Callable[[], Awaitable[DecisionsResult]],
) -> DecisionsResult:  # fmt: skip
    """Reserve the window's tokens (`estimate(duration_ms)`, asked only under a limit: the job's `tenant`'s own,
    else the setting), then `send` it; BudgetExhausted (nothing sent) when the day cannot pay for them."""
    limit = daily_limit(deps.settings)
    async with deps.sessionmaker() as session:
        today = await hume_usage.tenant_today(session, tenant, default_limit=limit, meter=INPUT_TOKENS)
    tokens = await estimate(window.duration_ms) if today.limit else 0
    reserved = await reserve_or_refuse(
        deps.sessionmaker, job_id, source, MEDIUM, window.index, tokens, limit=limit, meter=INPUT_TOKENS
    )
    try:
        result = await send()
    except DecisionsError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            async with deps.sessionmaker.begin() as session:
                await hume_usage.release(session, reserved)
        raise
    async with deps.sessionmaker.begin() as session:
        await hume_usage.answered_window(session, reserved, result.input_tokens, result.run_id)
    metrics.HUME_DECISION_INPUT_TOKENS.labels(figure="estimated").inc(tokens)
    if result.input_tokens is not None:
        metrics.HUME_DECISION_INPUT_TOKENS.labels(figure="billed").inc(result.input_tokens)
    return result
