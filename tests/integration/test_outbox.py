"""The transactional outbox: a job's end and its messages commit or roll back together, and a committed
message is delivered by whichever worker runs next (the process that ended the job may be gone)."""

from __future__ import annotations

import asyncio
import uuid

import procrastinate
import pytest
from sqlalchemy import text

from app.deps import Deps
from app.inbox.pipeline import DELIVER_MESSAGE
from app.notifications import signing
from app.store import api_keys, jobs, webhook_endpoints
from app.worker import outbox
from tests.conftest import ServiceFactory
from tests.webhook_receiver import Receiver


async def _setup(deps: Deps, url: str) -> tuple[uuid.UUID, str]:
    """An admin key's endpoint and a running job; returns the job id and the endpoint's secret."""
    secret = signing.new_secret()
    async with deps.sessionmaker.begin() as session:
        await api_keys.create(session, name="upstream", scopes=["admin"])
        principal = (await session.execute(text("SELECT id FROM api_key"))).scalar_one()
        await webhook_endpoints.create(
            session, api_key_id=principal, url=url, events=list(outbox.JOB_EVENTS), description=None, secret=secret
        )
        job = await jobs.create(session, kind="batch", status="in_progress", request={})
    return job.id, secret


async def _counts(deps: Deps) -> tuple[int, int]:
    async with deps.sessionmaker() as session:
        messages = (await session.execute(text("SELECT count(*) FROM webhook_message"))).scalar_one()
        tasks = (
            await session.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"), {"name": DELIVER_MESSAGE}
            )
        ).scalar_one()
    return int(messages), int(tasks)


async def test_a_job_end_that_rolls_back_sends_nothing(deps: Deps) -> None:
    job_id, _ = await _setup(deps, "https://1.1.1.1/hook")
    with pytest.raises(RuntimeError):
        async with deps.sessionmaker.begin() as session:
            assert await outbox.end_job(session, deps, job_id, "completed")
            raise RuntimeError("storing the predictions failed")
    assert await _counts(deps) == (0, 0)
    async with deps.sessionmaker() as session:
        job = await jobs.get(session, job_id)
    assert job is not None and job.status == "in_progress"


async def test_a_committed_end_is_delivered_by_a_worker_started_afterwards(
    deps: Deps, make_service: ServiceFactory
) -> None:
    """The process that ended the job had no worker (as if killed right after its commit): the message
    and its task are in the database, and the next worker to start delivers it."""
    with Receiver() as receiver:
        job_id, secret = await _setup(deps, receiver.url)
        receiver.secrets.append(secret)
        async with deps.sessionmaker.begin() as session:
            assert await outbox.end_job(session, deps, job_id, "failed", error="Hume reported the job failed")
        assert await _counts(deps) == (1, 1)
        assert receiver.deliveries == []
        # In a thread: the factory runs its own event loop to make the service's API key.
        await asyncio.to_thread(make_service, allow_private_hosts="127.0.0.1")
        [delivery] = await asyncio.to_thread(receiver.wait_for, 1)
    assert delivery.verified_by == [secret]
    assert delivery.payload["type"] == "job.failed"
    assert delivery.payload["data"]["job"]["error"]["message"] == "Hume reported the job failed"


async def test_only_the_queues_own_bookkeeping_skips_waiting_for_the_wal_flush(deps: Deps) -> None:
    """procrastinate's fetch/finish connections commit asynchronously (a crash can only make a job run again);
    an attempt's record, written on the intake pool or a session, waits for its flush as before."""
    show = "SHOW synchronous_commit"
    connector = deps.queue.connector
    assert isinstance(connector, procrastinate.PsycopgConnector)
    async with connector.pool.connection() as connection:
        assert await (await connection.execute(show)).fetchone() == ("off",)
    async with deps.db.connection() as connection:
        assert await (await connection.execute(show)).fetchone() == ("on",)
    async with deps.sessionmaker() as session:
        assert (await session.execute(text(show))).scalar_one() == "on"
