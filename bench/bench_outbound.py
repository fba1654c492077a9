"""Outbound webhook delivery throughput: our queue (one task per attempt, signed through the egress guard,
every attempt recorded in Postgres) against the floor, a bare loop POSTing the same signed bodies with one
shared httpx client, in the same run. Three processes: the receiver (answers 204 at once), the worker
(`python -m app worker`, as deployed) and this one, which queues the messages, watches the attempts being
recorded, and runs the floor while the worker waits.

Our POSTs go through aiohttp, the floor's through httpx (as the issue defines it). So the run also prints,
for reference, the same bare loop on aiohttp: against it, the figure shows what the queue, the guard and
the records cost on their own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import orjson
import psycopg
from sqlalchemy import text

from app import logs
from app.config import Settings
from app.config.sources import libpq_url
from app.deps import Deps
from app.notifications import signing
from app.store import api_keys, webhook_endpoints
from app.wiring import build_deps
from app.worker.outbox import envelope, queue_message
from bench.__main__ import Context
from tests.servers import free_port

MESSAGES = 500
"""Per round: enough that the worker's steady pace, not its first fetch, makes the figure."""
ROUNDS = 5
_DONE = "SELECT count(*) FROM webhook_attempt WHERE status_code = 204"


async def _answer(scope: dict[str, object], receive: object, send: object) -> None:
    """A bare ASGI app: read nothing more, answer 204."""
    assert callable(send)
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def _receiver() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "uvicorn", "bench.bench_outbound:_answer", "--port", str(port), "--log-level", "error"]
    )
    url = f"http://127.0.0.1:{port}/hook"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(url, content=b"{}")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _floor(client: httpx.AsyncClient, url: str, secret: str, round_: int) -> float:
    bodies = [orjson.dumps(envelope("ping", {"n": i})) for i in range(MESSAGES)]
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        headers = signing.headers([secret], f"msg_{round_}_{i}", datetime.now(UTC), body)
        (await client.post(url, content=body, headers=headers)).raise_for_status()
    return MESSAGES / (time.perf_counter() - started)


async def _aiohttp_floor(session: aiohttp.ClientSession, url: str, secret: str) -> float:
    bodies = [orjson.dumps(envelope("ping", {"n": i})) for i in range(MESSAGES)]
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        headers = signing.headers([secret], f"msg_aio_{i}", datetime.now(UTC), body)
        async with session.post(url, data=body, headers=headers) as response:
            response.raise_for_status()
            await response.read()
    return MESSAGES / (time.perf_counter() - started)


@contextlib.contextmanager
def _worker(database_url: str) -> Iterator[None]:
    """`python -m app worker` on the bench database, until it says it runs."""
    env = {
        **os.environ, "DATABASE_URL": database_url, "ALLOW_PRIVATE_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
        "HUME_API_KEY": "unused", "HUME_BASE_URL": "http://127.0.0.1:9", "ENVIRONMENT": "development",
    }  # fmt: skip
    env.pop("METRICS_PORT", None)
    process = subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "Worker running" not in line:
            raise RuntimeError(f"the worker did not start: {line!r}")
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _ours(deps: Deps, watcher: psycopg.AsyncConnection[Any], endpoint_id: uuid.UUID, round_: int) -> float:
    """MESSAGES queued in one transaction while the worker waits; the clock runs from their commit until
    the last attempt is recorded."""
    before = await _delivered(watcher)
    async with deps.sessionmaker.begin() as session:
        for i in range(MESSAGES):
            await queue_message(session, deps, endpoint_id, "ping", envelope("ping", {"round": round_, "n": i}), None)
    started = time.perf_counter()
    while True:
        if await _delivered(watcher) >= before + MESSAGES:
            break
        await asyncio.sleep(0.02)
    return MESSAGES / (time.perf_counter() - started)


async def _delivered(watcher: psycopg.AsyncConnection[Any]) -> int:
    # One autocommit statement per look, not an ORM session (BEGIN, SELECT, ROLLBACK), which took ~10% of
    # the measured process's CPU.
    row = await (await watcher.execute(_DONE)).fetchone()
    return 0 if row is None else int(row[0])


async def _measure(database_url: str, url: str, secret: str) -> tuple[list[float], list[float], float]:
    settings = Settings(database_url=database_url, allow_private_hosts="127.0.0.1", log_level="WARNING",
                        hume_api_key="unused", hume_base_url="http://127.0.0.1:9")  # fmt: skip
    logs.configure(settings)
    floors: list[float] = []
    ours: list[float] = []
    async with build_deps(settings, pool_size=2) as deps, httpx.AsyncClient() as client:
        async with deps.sessionmaker.begin() as session:
            await api_keys.create(session, name="bench", scopes=["admin"])
            owner = (await session.execute(text("SELECT id FROM api_key"))).scalar_one()
            endpoint = await webhook_endpoints.create(
                session, api_key_id=owner, url=url, events=["job.completed"], description=None, secret=secret
            )
        watcher = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        try:
            with _worker(database_url):  # up for the whole run, as a worker process is
                await _floor(client, url, secret, -1)  # warm-up of both paths, not counted
                await _ours(deps, watcher, endpoint.id, -1)
                for r in range(ROUNDS):
                    # Interleaved, each first in turn: the machine's drift falls on both alike.
                    if r % 2 == 0:
                        floors.append(await _floor(client, url, secret, r))
                        ours.append(await _ours(deps, watcher, endpoint.id, r))
                    else:
                        ours.append(await _ours(deps, watcher, endpoint.id, r))
                        floors.append(await _floor(client, url, secret, r))
            async with aiohttp.ClientSession() as session:
                await _aiohttp_floor(session, url, secret)
                reference = statistics.median([await _aiohttp_floor(session, url, secret) for _ in range(3)])
        finally:
            await watcher.close()
    return floors, ours, reference


def run(ctx: Context) -> None:
    secret = signing.new_secret()
    with _receiver() as url, ctx.database() as database_url:
        floors, ours, reference = asyncio.run(_measure(database_url, url, secret))
    rounds = " ".join(f"{o:.0f}/{f:.0f}" for o, f in zip(ours, floors, strict=True))
    print(f"(bench_outbound: rounds ours/floor msg/s {rounds})", flush=True)
    print(
        f"(bench_outbound: for reference, the bare loop on aiohttp: {reference:.0f} msg/s, "
        f"ours {statistics.median(ours) / reference:.3f} of it)",
        flush=True,
    )
    ctx.report(
        "outbound_webhook_throughput", statistics.median(ours), "msg/s",
        baseline=statistics.median(floors), baseline_name="bare_httpx_post_loop",
    )  # fmt: skip
