"""Our webhooks sent several at a time: one queue task takes an endpoint's due messages and POSTs them at
once, and still every attempt is recorded on its own (its attempt row, its message's state and count), and a
failing endpoint among them fails alone. A real worker loop (procrastinate) against real Postgres, receivers
on sockets that verify every delivery with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.inbox.pipeline import DELIVER_MESSAGE
from app.notifications import signing
from app.store import api_keys, webhook_endpoints
from app.wiring import build_deps
from app.worker.outbox import envelope, queue_message
from app.worker.task_queue import run_worker
from tests.conftest import service_settings
from tests.servers import free_port
from tests.webhook_receiver import Receiver

RETRIES = (0, 0.2, 0.2)
"""Three attempts a message, the retries 0.2 s apart."""


@contextlib.asynccontextmanager
async def _deps(database_url: str, emulator: EmulatorServer, **overrides: Any) -> AsyncIterator[Deps]:
    settings = service_settings(
        database_url, emulator, allow_private_hosts="127.0.0.1", webhook_retry_schedule_s=RETRIES, webhook_timeout_s=3,
        **overrides,
    )  # fmt: skip
    async with build_deps(settings, pool_size=2) as deps:
        yield deps


@contextlib.asynccontextmanager
async def _worker(deps: Deps) -> AsyncIterator[None]:
    running = asyncio.create_task(run_worker(deps))
    try:
        yield
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _endpoint(deps: Deps, url: str) -> tuple[uuid.UUID, str]:
    secret = signing.new_secret()
    async with deps.sessionmaker.begin() as session:
        owner = (await session.execute(text("SELECT id FROM api_key"))).scalar_one_or_none()
        if owner is None:
            await api_keys.create(session, name="upstream", scopes=["admin"])
            owner = (await session.execute(text("SELECT id FROM api_key"))).scalar_one()
        endpoint = await webhook_endpoints.create(
            session, api_key_id=owner, url=url, events=["job.completed"], description=None, secret=secret
        )
    return endpoint.id, secret


async def _queue(deps: Deps, counts: dict[uuid.UUID, int]) -> None:
    """Every endpoint's messages in one transaction, as job ends committing together would."""
    async with deps.sessionmaker.begin() as session:
        for endpoint_id, count in counts.items():
            for n in range(count):
                await queue_message(session, deps, endpoint_id, "ping", envelope("ping", {"n": n}), None)


async def _rows(deps: Deps, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with deps.sessionmaker() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


def _none(deps: Deps, where: str) -> Callable[[], Awaitable[list[tuple[Any, ...]]]]:
    """A check that no message is `where`."""
    return lambda: _rows(deps, f"SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM webhook_message WHERE {where})")


async def _until(check: Callable[[], Awaitable[Any]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _attempts(deps: Deps, endpoint_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Each message's (by msg_id) attempt rows in order: (status_code, error)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for msg_id, status, error in await _rows(
        deps,
        "SELECT m.msg_id, a.status_code, a.error FROM webhook_message m"
        " LEFT JOIN webhook_attempt a ON a.message_id = m.id WHERE m.endpoint_id = :e ORDER BY m.id, a.id",
        e=endpoint_id,
    ):
        found.setdefault(msg_id, [])
        if status is not None or error is not None:
            found[msg_id].append((status, error))
    return found


@pytest.mark.parametrize("in_flight", [32, 1])
async def test_one_task_sends_an_endpoints_messages_each_with_its_own_attempt(
    database_url: str, emulator: EmulatorServer, in_flight: int
) -> None:
    """As many at once as WEBHOOK_IN_FLIGHT allows (1: one after another, still by the one task)."""
    with Receiver() as receiver:
        async with _deps(database_url, emulator, webhook_in_flight=in_flight) as deps:
            endpoint_id, secret = await _endpoint(deps, receiver.url)
            receiver.secrets.append(secret)
            await _queue(deps, {endpoint_id: 40})
            # The outbox woke the endpoint once: one task waits for all 40.
            assert await _rows(
                deps, "SELECT status FROM procrastinate_jobs WHERE task_name = :t", t=DELIVER_MESSAGE
            ) == [("todo",)]
            async with _worker(deps):
                await asyncio.to_thread(receiver.wait_for, 40)
                await _until(_none(deps, "state <> 'delivered'"), 20, "every message delivered")
            messages = await _rows(deps, "SELECT msg_id, state, attempts, next_attempt_at FROM webhook_message")
            attempts = await _attempts(deps, endpoint_id)
            tasks = await _rows(deps, "SELECT status FROM procrastinate_jobs WHERE task_name = :t", t=DELIVER_MESSAGE)
    assert len(messages) == 40
    assert all(state == "delivered" and count == 1 and due is None for _, state, count, due in messages)
    # Each message: one attempt row of its own, and one POST under its own webhook-id, signed.
    assert {msg_id: rows for msg_id, rows in attempts.items()} == {m[0]: [(200, None)] for m in messages}
    assert Counter(d.msg_id for d in receiver.deliveries) == {m[0]: 1 for m in messages}
    assert all(d.verified_by == [secret] for d in receiver.deliveries)
    assert tasks == [("succeeded",)], "one task took all 40"


async def test_a_failing_endpoint_among_them_fails_alone(database_url: str, emulator: EmulatorServer) -> None:
    """A receiver answering 500 to five of a batch's twelve POSTs, and an endpoint where nothing listens, in
    the same run: each message keeps its own attempts and state."""
    with Receiver(statuses=[500] * 5) as receiver:
        async with _deps(database_url, emulator) as deps:
            good, secret = await _endpoint(deps, receiver.url)
            receiver.secrets.append(secret)
            dead, _ = await _endpoint(deps, f"http://127.0.0.1:{free_port()}/hook")
            await _queue(deps, {good: 12, dead: 6})
            async with _worker(deps):
                await _until(_none(deps, "state = 'pending'"), 30, "every message settled")
            good_attempts = await _attempts(deps, good)
            dead_attempts = await _attempts(deps, dead)
            states = dict(
                await _rows(deps, "SELECT endpoint_id, array_agg(DISTINCT state) FROM webhook_message GROUP BY 1")
            )
            counted = await _rows(
                deps,
                "SELECT count(*) FROM webhook_message m"
                " WHERE m.attempts <> (SELECT count(*) FROM webhook_attempt a WHERE a.message_id = m.id)",
            )
            failing = dict(await _rows(deps, "SELECT id, failing_since IS NOT NULL FROM webhook_endpoint"))
    assert states == {good: ["delivered"], dead: ["failed"]}
    assert counted == [(0,)], "a message's attempt count is its attempt rows"
    # Five messages of the good endpoint were answered 500 once, then delivered on their own retry.
    assert sorted(len(rows) for rows in good_attempts.values()) == [1] * 7 + [2] * 5
    for rows in good_attempts.values():
        assert rows[-1] == (200, None)
        assert all(row == (500, "receiver answered 500") for row in rows[:-1])
    assert Counter(d.msg_id for d in receiver.deliveries) == {m: len(rows) for m, rows in good_attempts.items()}
    # Every message of the dead one: its three attempts, each a refused connection, then failed.
    assert len(dead_attempts) == 6
    for rows in dead_attempts.values():
        assert len(rows) == len(RETRIES)
        assert all(status is None and "could not connect" in error for status, error in rows)
    assert failing == {good: False, dead: True}
