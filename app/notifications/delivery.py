"""Delivery of our outbound webhooks, several due messages of one endpoint per queue task.

A task is woken for an endpoint (by the outbox when a message is added, one waiting task per endpoint) or
for one message whose retry time came; either way it reads the endpoint and keeps up to WEBHOOK_IN_FLIGHT
of its due messages under way: each claimed in one statement with others (leased for WEBHOOK_TIMEOUT_S +
LEASE_SLACK_S, and POSTed at once through the egress guard, on connections aiohttp keeps alive), each
attempt recorded as its answer arrives (the answers in hand in one statement, each message with its own
attempt row and state). A worker that dies mid-batch so repeats no message whose delivery was recorded;
those it sent without recording (and those it had not sent) go out again when their lease ends (the
reconciler wakes their endpoint, redelivery.count_waiting): at least once, as promised.

Outcomes: 2xx delivered; 410 Gone disables the endpoint at once; anything else (another status, a
timeout, a refused connection, a blocked address) is retried on WEBHOOK_RETRY_SCHEDULE_S, and an
endpoint whose every attempt failed for WEBHOOK_DISABLE_AFTER_S is disabled. Messages of one endpoint
are sent independently: order is not promised.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.deps import Deps
from app.egress.errors import BlockedUrl, FetchFailed
from app.egress.post import Courier
from app.inbox.pipeline import DELIVER_MESSAGE
from app.notifications import signing
from app.store import webhook_delivery_rows, webhook_endpoints, webhook_messages
from app.store.db import driver_connection
from app.store.webhook_delivery_rows import Attempt, Endpoint, Message
from app.worker.outbox import wake

log = structlog.get_logger(__name__)

SNIPPET_BYTES = webhook_messages.SNIPPET_BYTES

LEASE_SLACK_S = 5.0
"""A claimed message's lease outlasts its POST's deadline (WEBHOOK_TIMEOUT_S) by this, for the record: a
message is claimed only when it can be sent at once."""
CLAIM_FOR_S = 2.0
"""A task claims for this long; then the endpoint's messages still due go to a new task, queued behind other
endpoints' tasks (and within procrastinate's 10 s graceful shutdown)."""


@dataclass(frozen=True)
class Result:
    outcome: str
    """delivered, gone, status, timeout, connection, blocked: the metric's label."""
    status: int | None
    body: bytes
    error: str | None
    duration_ms: int


def signing_keys(endpoint: Endpoint, now: datetime) -> list[str]:
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
    """The message's retry: a task at its time (no queueing lock: it is not due now), which takes whatever
    else of its endpoint is due then too."""
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


def _verdict(deps: Deps, endpoint: Endpoint, result: Result, attempts: int, now: datetime) -> Verdict:
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


async def deliver(deps: Deps, message_id: int | None = None, endpoint_id: str | None = None) -> None:
    """The queue task: the due messages of one endpoint (`endpoint_id`'s, or `message_id`'s, whose retry
    time came)."""
    async with deps.db.pool.connection() as connection:
        endpoint = await webhook_delivery_rows.endpoint(
            connection, endpoint_id=uuid.UUID(endpoint_id) if endpoint_id else None, message_id=message_id
        )
    if endpoint is None:
        return  # deleted meanwhile (with its messages)
    left_due = False
    if endpoint.disabled_at is None:
        run = _Run(deps, endpoint)
        await run.run()
        endpoint, left_due = run.endpoint, run.left_due
    if endpoint.disabled_at is not None:
        async with deps.db.pool.connection() as connection:
            await webhook_delivery_rows.fail_due(connection, endpoint.id)
    elif left_due:
        await wake(deps, endpoint.id)


class _Run:
    """One task's deliveries to one endpoint: up to WEBHOOK_IN_FLIGHT POSTs at once. A record of the answers in
    hand starts whenever the last one has ended (so it takes as many as arrived during one round trip to the
    database). Once half the room in flight is free, a claim fills it: in the same statement as a record
    starting then, else in one of its own (which runs beside a record under way)."""

    def __init__(self, deps: Deps, endpoint: Endpoint) -> None:
        self.deps = deps
        self.endpoint = endpoint
        self.lease_s = deps.settings.webhook_timeout_s + LEASE_SLACK_S
        self.claim_until = time.monotonic() + CLAIM_FOR_S
        self.in_flight = deps.settings.webhook_in_flight
        self.half = max(1, self.in_flight // 2)
        self.sends: dict[asyncio.Future[Result], Message] = {}
        self.answered: list[tuple[Message, Result]] = []
        self.claiming: asyncio.Task[list[Message]] | None = None
        self.recording: asyncio.Task[tuple[Endpoint, list[Message]]] | None = None
        self.asking = False
        """A claim is under way (on its own, or in the record under way)."""
        self.more = True
        """The last claim took all it asked for: more may be due."""
        self.left_due = False
        """Claiming stopped at CLAIM_FOR_S with more perhaps due."""

    async def run(self) -> None:
        try:
            while busy := self._next():
                done, _ = await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    if future is self.claiming:
                        self.claiming = None
                        self._send(future.result())
                    elif future is self.recording:
                        self.recording = None
                        self.endpoint, claimed = future.result()
                        self._send(claimed)
                    else:
                        self.answered.append((self.sends.pop(future), future.result()))
        finally:
            # Cancelled, or a claim or record failed: what is unrecorded stays leased, to be sent again.
            unfinished = self._busy()
            for future in unfinished:
                future.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    def _busy(self) -> list[asyncio.Future[Any]]:
        return [*self.sends, *(f for f in (self.claiming, self.recording) if f is not None)]

    def _room(self) -> int:
        """How many to claim now: the room in flight once half of it is free, while claiming goes on. (Each
        claim walks the endpoint's pending entries, ix_webhook_message_pending_endpoint_id_created_at, dead ones
        included until vacuum: on the all-endpoints ix_webhook_message_state_created_at before migration 0019, a
        claim with every record made it 0.4-1 ms of Postgres a message after 4,000 messages.)"""
        room = self.in_flight - len(self.sends)
        if room < self.half or self.asking or not self.more or self.endpoint.disabled_at is not None:
            return 0
        if time.monotonic() >= self.claim_until:
            self.more, self.left_due = False, True
            return 0
        return room

    def _next(self) -> list[asyncio.Future[Any]]:
        """Start a record, and a claim, when their time has come; what is under way."""
        if self.recording is None and self.answered:
            room = self._room()
            self.asking = self.asking or room > 0
            self.recording = asyncio.create_task(self._record(self.answered, room))
            self.answered = []
        if room := self._room():
            self.asking = True
            self.claiming = asyncio.create_task(self._claim(room))
        return self._busy()

    async def _claim(self, limit: int) -> list[Message]:
        try:
            async with self.deps.db.pool.connection() as connection:
                claimed = await webhook_delivery_rows.claim(
                    connection, self.endpoint.id, limit=limit, lease_s=self.lease_s
                )
        finally:
            self.asking = False
        self.more = len(claimed) == limit
        return claimed

    async def _record(self, answered: list[tuple[Message, Result]], claim: int) -> tuple[Endpoint, list[Message]]:
        try:
            endpoint, claimed = await _record(self.deps, self.endpoint, answered, claim=claim, lease_s=self.lease_s)
        finally:
            if claim:
                self.asking = False
        if claimed is not None:
            self.more = len(claimed) == claim
        return endpoint, claimed or []

    def _send(self, messages: list[Message]) -> None:
        if not messages:
            return
        now = datetime.now(UTC)
        signer = signing.Signer(signing_keys(self.endpoint, now))
        url = self.endpoint.url
        for m in messages:
            self.sends[
                asyncio.ensure_future(send(self.deps.courier, url, signer.headers(m.msg_id, now, m.body), m.body))
            ] = m


async def _record(
    deps: Deps, endpoint: Endpoint, answered: list[tuple[Message, Result]], *, claim: int, lease_s: float
) -> tuple[Endpoint, list[Message] | None]:
    """Record the answers in hand; the endpoint as they leave it, and up to `claim` more of its due messages
    when all were delivered (the usual case: one statement on the plain pool, atomic without a transaction).
    Anything else also moves the endpoint and queues retries, in one transaction, and claims nothing (None)."""
    now = datetime.now(UTC)
    attempts: list[Attempt] = []
    verdicts: list[Verdict] = []
    for message, result in answered:
        verdict = _verdict(deps, endpoint, result, message.attempts + 1, now)
        attempts.append(
            Attempt(message.id, verdict.state, message.attempts + 1, verdict.retry_at, result.status, result.body,
                    result.duration_ms, result.error)
        )  # fmt: skip
        verdicts.append(verdict)
    claimed: list[Message] | None = None
    if endpoint.failing_since is None and all(v.state == "delivered" for v in verdicts):
        async with deps.db.pool.connection() as connection:
            if claim:
                recorded, claimed = await webhook_delivery_rows.record_and_claim(
                    connection, attempts, endpoint.id, limit=claim, lease_s=lease_s
                )
            else:
                recorded = await webhook_delivery_rows.record(connection, attempts)
    else:
        async with deps.sessionmaker.begin() as session:
            recorded = await webhook_delivery_rows.record(await driver_connection(session), attempts)
            endpoint = await _endpoint_after(session, endpoint, answered, verdicts, now)
            for attempt in attempts:
                if attempt.next_attempt_at is not None and attempt.message_id in recorded:
                    await schedule(session, deps, attempt.message_id, attempt.next_attempt_at)
    for (message, result), attempt in zip(answered, attempts, strict=True):
        if attempt.message_id in recorded:
            log.info(
                "webhook attempt", message_id=message.id, msg_id=message.msg_id, endpoint_id=str(endpoint.id),
                outcome=result.outcome, status=result.status, attempt=attempt.attempts, ms=result.duration_ms,
            )  # fmt: skip
    return endpoint, claimed


async def _endpoint_after(
    session: AsyncSession, endpoint: Endpoint, answered: list[tuple[Message, Result]], verdicts: list[Verdict],
    now: datetime,
) -> Endpoint:  # fmt: skip
    """The failing clock (WEBHOOK_DISABLE_AFTER_S counts from the first of an unbroken run of failures: any
    delivery stops it) and disabling, after a round's answers."""
    outcomes = {result.outcome for _, result in answered}
    failing_since = endpoint.failing_since
    if "delivered" in outcomes:
        failing_since = None
    elif outcomes - {"gone"} and failing_since is None:
        failing_since = now  # the 5-day clock starts
    if failing_since != endpoint.failing_since:
        await webhook_endpoints.change(session, endpoint.id, failing_since=failing_since)
    disabled_at = endpoint.disabled_at
    reason = next((v.disable for v in verdicts if v.disable is not None), None)
    if reason is not None and disabled_at is None:
        await _disable(session, endpoint, reason)
        disabled_at = now
    return replace(endpoint, failing_since=failing_since, disabled_at=disabled_at)


async def _disable(session: AsyncSession, endpoint: Endpoint, reason: str) -> None:
    if await webhook_endpoints.disable(session, endpoint.id, reason):
        metrics.WEBHOOK_ENDPOINTS_DISABLED.labels("gone" if "410" in reason else "failing").inc()
        log.warning("webhook endpoint disabled", endpoint_id=str(endpoint.id), reason=reason)
