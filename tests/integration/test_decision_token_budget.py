"""Audio Decisions input tokens in the store (app/store/hume_usage.py) as a decision window spends them
(app/decisions/token_spend.py): the window's estimate is reserved against its tenant's day under the seconds'
rule, then replaced by what Hume's answer reports; a 4xx answer gives it back, no answer keeps it, and a window
the day cannot pay for is never sent. The day's seconds are another budget, and a tenant's own limit of tokens
(`tenant-budget --decision-tokens`) replaces the setting for it alone. Real Postgres."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.decisions import token_spend
from app.deps import Deps
from app.hume.decisions import DecisionsError, DecisionsResult
from app.media.windows import AudioWindow
from app.store import hume_usage, jobs
from app.store.hume_usage import INPUT_TOKENS
from app.usage.budget import BudgetExhausted, BudgetSpent

WINDOW_MS = 30_000
ESTIMATE = 400
"""The window's estimate (Hume's input_tokens endpoint in a job; given here)."""


async def _job(sessionmaker: async_sessionmaker[AsyncSession], tenant: str) -> uuid.UUID:
    async with sessionmaker.begin() as session:
        job = await jobs.create(session, kind="batch", backend="v1", status="in_progress", request={}, tenant=tenant)
    return job.id


async def _estimate(duration_ms: int) -> int:
    assert duration_ms == WINDOW_MS
    return ESTIMATE


async def _not_asked(duration_ms: int) -> int:
    raise AssertionError("without a limit no estimate is asked")


def _window(index: int) -> AudioWindow:
    return AudioWindow(index=index, start_ms=index * WINDOW_MS, end_ms=(index + 1) * WINDOW_MS, wav=b"")


async def _spent(sessionmaker: async_sessionmaker[AsyncSession], tenant: str) -> tuple[float, float]:
    """(tokens, seconds) the tenant spent today."""
    async with sessionmaker() as session:
        tokens = await hume_usage.tenant_today(session, tenant, default_limit=0, meter=INPUT_TOKENS)
        seconds = await hume_usage.tenant_today(session, tenant, default_limit=0)
    return tokens.spent, seconds.spent


async def test_a_window_s_reservation_is_replaced_by_what_hume_billed(deps: Deps) -> None:
    deps = dataclasses.replace(deps, settings=deps.settings.replace(hume_tenant_daily_decision_tokens=1000))
    job_id = await _job(deps.sessionmaker, "t")
    sent: list[int] = []

    def answer(index: int, tokens: int | None) -> DecisionsResult:
        sent.append(index)
        return DecisionsResult(run_id=f"run-{index}", answers={}, input_tokens=tokens, raw={})

    async def billed_350() -> DecisionsResult:
        return answer(0, 350)

    await token_spend.metered(deps, job_id, "t", 0, _window(0), _estimate, billed_350)
    assert await _spent(deps.sessionmaker, "t") == (350, 0)

    async def refused() -> DecisionsResult:
        sent.append(1)
        raise DecisionsError("too short", status=400, code="audio_too_short")

    with pytest.raises(DecisionsError):  # a 4xx is not billed (D/billing): the 400 reserved are given back
        await token_spend.metered(deps, job_id, "t", 0, _window(1), _estimate, refused)
    assert await _spent(deps.sessionmaker, "t") == (350, 0)

    async def unanswered() -> DecisionsResult:
        sent.append(2)
        raise DecisionsError("no answer", status=None, retryable=True)

    with pytest.raises(DecisionsError):  # Hume may have billed it: the estimate stays
        await token_spend.metered(deps, job_id, "t", 0, _window(2), _estimate, unanswered)
    assert await _spent(deps.sessionmaker, "t") == (750, 0)

    async def never() -> DecisionsResult:
        sent.append(3)
        raise AssertionError("a window the day cannot pay for must not be sent")

    with pytest.raises(BudgetExhausted) as stopped:  # 750 + 400 > 1000
        await token_spend.metered(deps, job_id, "t", 0, _window(3), _estimate, never)
    message = str(stopped.value)
    assert stopped.value.code == "hume_budget_exhausted"
    assert "'t' has spent 750 of its 1000 Audio Decisions input tokens" in message, message
    assert "HUME_TENANT_DAILY_DECISION_TOKENS" in message and "needs 400 tokens" in message
    assert sent == [0, 1, 2]

    async with deps.sessionmaker() as session:
        usage = list(await session.execute(
            text("SELECT chunk, medium, seconds, input_tokens, state, billing, run_id FROM hume_usage"
                 " WHERE job_id = :j ORDER BY chunk"), {"j": job_id},
        ))  # fmt: skip
        day = (await session.execute(text("SELECT input_tokens, limit_input_tokens, seconds FROM hume_tenant_day"
                                          " WHERE tenant = 't'"))).one()  # fmt: skip
    assert [tuple(u) for u in usage] == [
        (0, "decisions", 0.0, 350, "billed", "hume", "run-0"),
        (2, "decisions", 0.0, 400, "sent", "estimate", None),
    ]
    assert tuple(day) == (750, 1000, 0.0)

    # A submission passes while a token is left, and is refused 429 once none is.
    async with deps.sessionmaker() as session:
        await token_spend.check_can_submit(session, deps.settings, "t")  # 250 left
    tight = deps.settings.replace(hume_tenant_daily_decision_tokens=750)
    async with deps.sessionmaker() as session:
        with pytest.raises(BudgetSpent) as spent:
            await token_spend.check_can_submit(session, tight, "t")
    assert spent.value.status == 429 and spent.value.details is not None
    assert (spent.value.details["limit_input_tokens"], spent.value.details["spent_input_tokens"]) == (750, 750)


async def test_an_answer_without_a_token_count_keeps_the_estimate(deps: Deps) -> None:
    """Unset, the setting is no limit: nothing is estimated (0 reserved) and Hume's figure counts; an answer that
    reports none keeps what was reserved, marked as the estimate."""
    job_id = await _job(deps.sessionmaker, "u")

    async def billed_90() -> DecisionsResult:
        return DecisionsResult(run_id="r", answers={}, input_tokens=90, raw={})

    async def silent() -> DecisionsResult:
        return DecisionsResult(run_id="s", answers={}, input_tokens=None, raw={})

    assert deps.settings.hume_tenant_daily_decision_tokens is None
    await token_spend.metered(deps, job_id, "u", 0, _window(0), _not_asked, billed_90)
    await token_spend.metered(deps, job_id, "u", 0, _window(1), _not_asked, silent)
    assert await _spent(deps.sessionmaker, "u") == (90, 0)
    async with deps.sessionmaker() as session:
        billing = list(await session.execute(
            text("SELECT input_tokens, billing FROM hume_usage WHERE job_id = :j ORDER BY chunk"), {"j": job_id}
        ))  # fmt: skip
    assert [tuple(b) for b in billing] == [(90, "hume"), (0, "estimate")]


def test_meters_share_one_statement_shape() -> None:
    """The tokens' reservation is the seconds' statement over the tokens' columns, not a copy of it."""
    seconds = str(hume_usage._reserve_statement(hume_usage.SECONDS))
    tokens = str(hume_usage._reserve_statement(INPUT_TOKENS))
    swapped = seconds.replace("limit_seconds", "limit_input_tokens").replace("seconds", "input_tokens")
    assert swapped == tokens
    assert "b.daily_input_tokens" in tokens  # the tenant's own limit (migration 0021)


async def _set_own(deps: Deps, tenant: str, tokens: int | None) -> None:
    async with deps.sessionmaker.begin() as session:
        await hume_usage.set_tenant_limit(session, tenant, tokens, meter=INPUT_TOKENS)


async def test_a_tenant_s_own_limit_wins_over_the_setting_for_it_alone(deps: Deps) -> None:
    """Setting 1,000 a day; tenant "own" has its own 300: its 400-token window is refused (naming its own
    limit) while tenant "other" still pays from the setting's 1,000. An own limit of 0 is no limit, as the
    seconds' is. Its own seconds are another override, kept when the tokens' goes."""
    deps = dataclasses.replace(deps, settings=deps.settings.replace(hume_tenant_daily_decision_tokens=1000))
    own, other = await _job(deps.sessionmaker, "own"), await _job(deps.sessionmaker, "other")
    await _set_own(deps, "own", 300)
    async with deps.sessionmaker.begin() as session:
        await hume_usage.set_tenant_limit(session, "own", 50)  # seconds

    async def billed() -> DecisionsResult:
        return DecisionsResult(run_id="r", answers={}, input_tokens=ESTIMATE, raw={})

    async def never() -> DecisionsResult:
        raise AssertionError("a window the day cannot pay for must not be sent")

    with pytest.raises(BudgetExhausted) as stopped:  # 0 + 400 > 300
        await token_spend.metered(deps, own, "own", 0, _window(0), _estimate, never)
    message = str(stopped.value)
    assert "'own' has spent 0 of its 300 Audio Decisions input tokens" in message, message
    assert "its own limit" in message and "HUME_TENANT_DAILY_DECISION_TOKENS" not in message
    await token_spend.metered(deps, other, "other", 0, _window(0), _estimate, billed)
    assert await _spent(deps.sessionmaker, "other") == (ESTIMATE, 0)

    async with deps.sessionmaker() as session:
        mine = await hume_usage.tenant_today(session, "own", default_limit=1000, meter=INPUT_TOKENS)
        theirs = await hume_usage.tenant_today(session, "other", default_limit=1000, meter=INPUT_TOKENS)
        seconds = await hume_usage.tenant_today(session, "own", default_limit=7, meter=hume_usage.SECONDS)
    assert (mine.limit, mine.override, theirs.limit, theirs.override) == (300, True, 1000, False)
    assert (seconds.limit, seconds.override) == (50, True)

    # Submission: its own 300 is the day's limit; once spent, 429 naming it.
    async with deps.sessionmaker() as session:
        await token_spend.check_can_submit(session, deps.settings, "own")
    await _set_own(deps, "own", 0)  # no limit, like --seconds 0
    await token_spend.metered(deps, own, "own", 0, _window(0), _estimate, billed)
    await _set_own(deps, "own", ESTIMATE)
    async with deps.sessionmaker() as session:
        with pytest.raises(BudgetSpent) as spent:
            await token_spend.check_can_submit(session, deps.settings, "own")
        await token_spend.check_can_submit(session, deps.settings, "other")  # 600 of the setting's 1,000 left
    assert spent.value.status == 429 and spent.value.code == "hume_budget_exhausted"
    assert spent.value.details is not None
    assert (spent.value.details["limit_input_tokens"], spent.value.details["spent_input_tokens"]) == (400, 400)

    # Removing the tokens' override keeps the seconds' one (the tenant's row stays), and then removes the row.
    await _set_own(deps, "own", None)
    async with deps.sessionmaker() as session:
        mine = await hume_usage.tenant_today(session, "own", default_limit=1000, meter=INPUT_TOKENS)
        seconds = await hume_usage.tenant_today(session, "own", default_limit=7, meter=hume_usage.SECONDS)
    assert (mine.limit, mine.override, seconds.limit, seconds.override) == (1000, False, 50, True)
    async with deps.sessionmaker.begin() as session:
        await hume_usage.set_tenant_limit(session, "own", None)
    async with deps.sessionmaker() as session:
        left = (await session.execute(text("SELECT count(*) FROM hume_tenant_budget WHERE tenant = 'own'"))).scalar()
    assert left == 0


async def test_an_own_limit_without_the_setting_is_estimated_and_kept(deps: Deps) -> None:
    """The setting unset (no limit, nothing estimated), a tenant's own limit still makes each window's tokens
    estimated and reserved first, so the window that would pass it is never sent."""
    assert deps.settings.hume_tenant_daily_decision_tokens is None
    job_id = await _job(deps.sessionmaker, "capped")
    await _set_own(deps, "capped", 2 * ESTIMATE)
    sent: list[int] = []

    def answer(index: int) -> Callable[[], Awaitable[DecisionsResult]]:
        async def send() -> DecisionsResult:
            sent.append(index)
            return DecisionsResult(run_id=f"r{index}", answers={}, input_tokens=ESTIMATE, raw={})

        return send

    for index in range(2):
        await token_spend.metered(deps, job_id, "capped", 0, _window(index), _estimate, answer(index))
    with pytest.raises(BudgetExhausted):
        await token_spend.metered(deps, job_id, "capped", 0, _window(2), _estimate, answer(2))
    assert sent == [0, 1]
    assert await _spent(deps.sessionmaker, "capped") == (2 * ESTIMATE, 0)
