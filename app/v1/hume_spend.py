"""Spending Hume's metered seconds: every v1 request's cost (known before it is sent, app/hume/billing.py)
is reserved against its tenant's daily budget first, and settled by Hume's answer.

An answer with a result bills the reservation (under Hume's run id, whose billed seconds are read from Hume's
runs API later and then replace the estimate: app/usage/billed_runs.py); an error answer gives it back (HUME-V1-FACTS
§6: "failed file request = 0"); no answer at all (a timeout, a dropped connection, a killed worker) keeps it,
because Hume may have measured and billed the request: the budget errs on the side of spending less.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from app.core import metrics
from app.deps import Deps
from app.hume.errors import HumeError
from app.hume.expression_client import Measured
from app.store import hume_usage
from app.usage import billed_runs
from app.usage.budget import reserve_or_refuse


async def metered(
    deps: Deps, job_id: uuid.UUID, source: int, medium: str, chunk: int, seconds: float,
    send: Callable[[], Awaitable[Measured]],
) -> Measured:  # fmt: skip
    """Reserve `seconds` of the job's tenant's budget, then `send` the request; BudgetExhausted unsent."""
    reserved = await reserve_or_refuse(
        deps.sessionmaker, job_id, source, medium, chunk, seconds, limit=deps.settings.hume_tenant_daily_seconds
    )
    try:
        measured = await send()
    except HumeError as exc:
        if exc.status is not None:  # Hume answered: an error is billed 0
            async with deps.sessionmaker.begin() as session:
                await hume_usage.release(session, reserved)
        raise
    delay = deps.settings.hume_run_read_delay_s
    async with deps.sessionmaker.begin() as session:
        await hume_usage.billed(
            session, reserved, request_id=measured.request_id, run_id=measured.run_id, read_in_s=delay
        )
        await billed_runs.schedule_read(session, deps, in_s=delay)
    metrics.HUME_ESTIMATED_SECONDS.labels(endpoint=medium, mode="file").inc(seconds)
    return measured
