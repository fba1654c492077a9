"""One delivery attempt per queue task: sign, POST through the egress guard, record the attempt, then
either finish the message or queue the next attempt at its scheduled time.

Outcomes: 2xx delivered; 410 Gone disables the endpoint at once; anything else (another status, a
timeout, a refused connection, a blocked address) is retried on WEBHOOK_RETRY_SCHEDULE_S, and an
endpoint whose every attempt failed for WEBHOOK_DISABLE_AFTER_S is disabled. Messages of one endpoint
are sent independently: order is not promised.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.deps import Deps
from app.egress.errors import BlockedUrl, FetchFailed
from app.egress.post import GuardedPoster
from app.egress.url_guard import UrlGuard
from app.inbox.pipeline import DELIVER_MESSAGE
from app.notifications import signing
from app.store import webhook_delivery_rows, webhook_endpoints, webhook_messages
from app.store.db import driver_connection
from app.store.webhook_delivery_rows import Outgoing

log = structlog.get_logger(__name__)

SNIPPET_BYTES = webhook_messages.SNIPPET_BYTES


class Courier:
    """The process's one guarded HTTP client for outbound webhooks (`deps.courier`)."""

    def __init__(self, allow_private_hosts: str | None, *, timeout_s: float) -> None:
        self.guard = UrlGuard.from_setting(allow_private_hosts)
        self.timeout_s = timeout_s
        self.poster = GuardedPoster(self.guard)

    async def aclose(self) -> None:
        await self.poster.aclose()


@dataclass(frozen=True)
class Result:
    outcome: str
    """delivered, gone, status, timeout, connection, blocked: the metric's label."""
    status: int | None
    body: bytes
    error: str | None
    duration_ms: int


def signing_keys(endpoint: Outgoing, now: datetime) -> list[str]:
    keys = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        keys.append(endpoint.previous_secret)
    return keys


async def send(courier: Courier, url: str, headers: dict[str, str], body: bytes) -> Result:
    started = time.perf_counter()
    status: int | None = None
    answer = b""
    error: str | None = None
    try:
        response = await courier.poster.post(
            url, body, headers=headers, timeout_s=courier.timeout_s, max_response_bytes=SNIPPET_BYTES
        )
        status, answer = response.status, response.body
        outcome = "delivered" if 200 <= status < 300 else "gone" if status == 410 else "status"
        if outcome == "status":
            error = f"receiver answered {status}"
    except BlockedUrl as exc:
        outcome, error = "blocked", exc.message
    except FetchFailed as exc:
        outcome, error = ("timeout" if exc.kind == "timeout" else "connection"), exc.message
    elapsed = time.perf_counter() - started
    metrics.WEBHOOK_ATTEMPT_SECONDS.observe(elapsed)
    metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
    return Result(outcome, status, answer, error, int(elapsed * 1000))


def next_wait_s(schedule: tuple[float, ...], attempts: int) -> float | None:
    """The wait before attempt number `attempts + 1` (after `attempts` failed), or None when none is left."""
    if attempts >= len(schedule):
        return None
    wait = schedule[attempts]
    return wait * random.uniform(0.9, 1.1)  # jitter: receivers recovering from an outage are not stampeded


async def schedule(session: AsyncSession, deps: Deps, message_id: int, at: datetime) -> None:
    connection = await driver_connection(session)
    task = deps.queue.configure_task(DELIVER_MESSAGE, connection=connection, schedule_at=at)
    await task.defer_async(message_id=message_id)


@dataclass(frozen=True)
class Verdict:
    """What an attempt's result does to its message and endpoint."""

    state: str
    retry_at: datetime | None = None
    disable: str | None = None
    """Why the endpoint is disabled, when it is."""


def _verdict(deps: Deps, endpoint: Outgoing, result: Result, attempts: int, now: datetime) -> Verdict:
    if result.outcome == "delivered":
        return Verdict("delivered")
    if result.outcome == "gone":
        return Verdict("failed", disable="the receiver answered 410 Gone")
    settings = deps.settings
    since = endpoint.failing_since
    if since is not None and (now - since).total_seconds() >= settings.webhook_disable_after_s:
        return Verdict("failed", disable=f"every attempt failed since {since.isoformat()}")
    wait = next_wait_s(settings.webhook_retry_schedule_s, attempts)
    if wait is None:
        return Verdict("failed")
    return Verdict("pending", retry_at=now + timedelta(seconds=wait))


async def deliver(deps: Deps, message_id: int) -> None:
    """The queue task: one attempt of one message."""
    rows = deps.db.pool
    async with rows.connection() as connection:
        message = await webhook_delivery_rows.outgoing(connection, message_id)
    if message is None or message.state != "pending":
        return  # delivered, given up, or deleted meanwhile: a duplicate task does nothing
    if message.disabled_at is not None:
        async with deps.sessionmaker.begin() as session:
            await webhook_messages.set_state(session, message_id, "failed", attempts=message.attempts)
        return
    now = datetime.now(UTC)
    headers = signing.headers(signing_keys(message, now), message.msg_id, now, message.body)
    result = await send(deps.courier, message.url, headers, message.body)
    attempts = message.attempts + 1
    verdict = _verdict(deps, message, result, attempts, now)
    if verdict.state == "delivered" and message.failing_since is None:
        # The usual case: one statement on the plain pool, atomic without a transaction.
        assert result.status is not None
        async with rows.connection() as connection:
            recorded = await webhook_delivery_rows.delivered(
                connection, message_id, attempts=attempts, status=result.status, response=result.body,
                duration_ms=result.duration_ms,
            )  # fmt: skip
    else:
        async with deps.sessionmaker.begin() as session:
            recorded = await _record(session, deps, message, message_id, result, attempts, verdict, now)
    if not recorded:
        return
    log.info(
        "webhook attempt", message_id=message_id, msg_id=message.msg_id, endpoint_id=str(message.endpoint_id),
        outcome=result.outcome, status=result.status, attempt=attempts, ms=result.duration_ms,
    )  # fmt: skip


async def _record(
    session: AsyncSession, deps: Deps, endpoint: Outgoing, message_id: int, result: Result, attempts: int,
    verdict: Verdict, now: datetime,
) -> bool:  # fmt: skip
    recorded = await webhook_messages.finish_attempt(
        session, message_id, state=verdict.state, attempts=attempts, next_attempt_at=verdict.retry_at,
        status_code=result.status, response=result.body, duration_ms=result.duration_ms, error=result.error,
    )  # fmt: skip
    if not recorded:
        return False
    if result.outcome == "delivered" and endpoint.failing_since is not None:
        await webhook_endpoints.change(session, endpoint.endpoint_id, failing_since=None)
    elif result.outcome not in ("delivered", "gone") and endpoint.failing_since is None:
        await webhook_endpoints.change(session, endpoint.endpoint_id, failing_since=now)  # the 5-day clock starts
    if verdict.disable is not None:
        await _disable(session, endpoint, verdict.disable)
    if verdict.retry_at is not None:
        await schedule(session, deps, message_id, verdict.retry_at)
    return True


async def _disable(session: AsyncSession, endpoint: Outgoing, reason: str) -> None:
    if await webhook_endpoints.disable(session, endpoint.endpoint_id, reason):
        metrics.WEBHOOK_ENDPOINTS_DISABLED.labels("gone" if "410" in reason else "failing").inc()
        log.warning("webhook endpoint disabled", endpoint_id=str(endpoint.endpoint_id), reason=reason)
