"""A live session's Hume bill, kept like a v1 file request's (app/v1/hume_spend.py): reserved against its
tenant's daily budget before Hume takes media, estimated from what was relayed, and replaced by Hume's own
`metered_seconds` once its run is read (app/usage/billed_runs.py). A session is one run at Hume (HUME-V1-FACTS
§8: `run_id = session_id`), so it is one `hume_usage` row: its run id is set when Hume's `session.created`
names it (from then the unowned-runs check counts the run as ours), and it counts on the UTC day it opened.

Its cost is not known in advance, so the reservation grows as media passes: the minimum a run that takes media
is billed (10 s, HUME-V1-FACTS §6) when the session opens, then GROW_STEP_S at a time under the same rule as
any file request (`hume_usage.grow`). A frame that no longer fits is not forwarded: the session is ended (see
app/sessions/service.py), so a tenant's sessions never take more than its day's budget. When the session ends
the reservation becomes the estimate of what Hume took in (`billing.run_seconds` of the frames' seconds).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.deps import Deps
from app.hume import billing
from app.store import hume_usage
from app.store.hume_usage import DayBudget
from app.usage import billed_runs
from app.usage.budget import BudgetSpent, spent_message

log = structlog.get_logger(__name__)

GROW_STEP_S = 60.0
"""A session's reservation grows by a minute of billed media at a time: one statement a minute per session at
real time (200 sessions: about 3 a second), while a tenant's sessions hold at most this much each beyond what
they took in. When a step no longer fits, just what the next frame needs is asked for."""
_EPSILON = 1e-6
"""Sums of thirds of a second (video) carry float noise: a frame that fits exactly needs no more."""
OPENING = "a live session"
"""What a session needs before it opens, in a refusal: the minimum of a run that takes media."""


async def check_can_open(deps: Deps, tenant: str) -> None:
    """BudgetSpent (429) when the tenant's day cannot pay for a session's minimum: a token is not minted then."""
    async with deps.sessionmaker() as session:
        today = await hume_usage.tenant_today(session, tenant, default_limit=deps.settings.hume_tenant_daily_seconds)
    if not today.affords(billing.MIN_RUN_SECONDS):
        raise BudgetSpent(today, billing.MIN_RUN_SECONDS, OPENING)


def cannot_open(spent: DayBudget) -> str:
    """Why a session was refused as it opened: the day cannot pay for its minimum."""
    return spent_message(spent, billing.MIN_RUN_SECONDS, OPENING)


@dataclass
class SessionMeter:
    deps: Deps
    job_id: uuid.UUID
    medium: str
    usage_id: int
    reserved_s: float
    """Seconds charged to the tenant's day for this session so far."""
    media_s: float = 0.0
    """Seconds of media forwarded to Hume (audio seconds; 1/3 s a video frame), before the run's minimum."""

    @property
    def estimate_s(self) -> float:
        """What Hume bills for what it was sent (HUME-V1-FACTS §6)."""
        return billing.run_seconds(self.media_s)

    async def admit(self, frame_bytes: int) -> DayBudget | None:
        """Whether a binary frame of `frame_bytes` may go to Hume: None (its seconds now counted), or the day's
        budget it would overspend (nothing counted; the caller ends the session)."""
        media_s = self.media_s + billing.realtime_frame_seconds(self.medium, frame_bytes)
        needed = billing.run_seconds(media_s) - self.reserved_s
        if needed > _EPSILON:
            refused = await self._grow(needed)
            if refused is not None:
                metrics.HUME_TENANT_BUDGET_REFUSALS.labels(endpoint=self.medium).inc()
                return refused
        self.media_s = media_s
        return None

    async def _grow(self, needed: float) -> DayBudget | None:
        refused: DayBudget | None = None
        for ask in dict.fromkeys((max(GROW_STEP_S, needed), needed)):
            async with self.deps.sessionmaker.begin() as session:
                refused = await hume_usage.grow(
                    session, self.usage_id, ask, default_limit=self.deps.settings.hume_tenant_daily_seconds
                )
            if refused is None:
                self.reserved_s += ask
                return None
        return refused

    async def owns(self, session: AsyncSession, run_id: str) -> None:
        """Hume named the session's run (`session.created`): in the caller's transaction."""
        await hume_usage.session_run(session, self.usage_id, run_id)

    async def release(self) -> None:
        """Hume never opened the session: nothing is billed."""
        async with self.deps.sessionmaker.begin() as session:
            await hume_usage.release(session, self.usage_id)

    async def end(self) -> None:
        """The session ended: the reservation becomes the estimate, and the run (if Hume named it and it took
        media) is read from Hume in HUME_RUN_READ_DELAY_S."""
        delay = self.deps.settings.hume_run_read_delay_s
        async with self.deps.sessionmaker.begin() as session:
            if await hume_usage.end_session_run(session, self.usage_id, self.estimate_s, read_in_s=delay):
                await billed_runs.schedule_read(session, self.deps, in_s=delay)
        metrics.HUME_ESTIMATED_SECONDS.labels(endpoint=self.medium, mode="realtime").inc(self.estimate_s)


async def open_meter(session: AsyncSession, deps: Deps, job_id: uuid.UUID, medium: str) -> SessionMeter | DayBudget:
    """Reserve a session's minimum for its (just created) job, in the caller's transaction: its meter, or the
    day's budget that cannot pay for it (nothing reserved)."""
    reserved = await hume_usage.reserve(
        session, job_id, 0, medium, 0, billing.MIN_RUN_SECONDS, default_limit=deps.settings.hume_tenant_daily_seconds
    )
    if isinstance(reserved, DayBudget):
        metrics.HUME_TENANT_BUDGET_REFUSALS.labels(endpoint=medium).inc()
        return reserved
    return SessionMeter(deps=deps, job_id=job_id, medium=medium, usage_id=reserved, reserved_s=billing.MIN_RUN_SECONDS)


async def read_abandoned(session: AsyncSession, deps: Deps, job_ids: list[uuid.UUID]) -> None:
    """Sessions ended without their relay (its process died): their runs are read from Hume, the reservation
    standing as the estimate until then. In the caller's transaction."""
    delay = deps.settings.hume_run_read_delay_s
    if await hume_usage.read_session_runs(session, job_ids, in_s=delay):
        await billed_runs.schedule_read(session, deps, in_s=delay)
