"""Outbound webhook delivery throughput: our queue (a task takes several due messages of one endpoint, signs
and POSTs them through the egress guard, every attempt recorded in Postgres) against the floor, a bare loop
POSTing the same signed bodies one after another with one shared aiohttp session (the client we use), in
the same run. Three processes: the receiver (answers 204 at once), the worker (`python -m app worker`, as
deployed) and this one, which queues the messages, watches the attempts being recorded, and runs the floors
while the worker waits.

The same bare loop on httpx runs in the same rounds, reported as a second figure (the floor an earlier issue
defined)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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
ROUNDS = 11
"""Each a round of ours and one of each floor; the machine's load drifts by 2x within a run, so the paired
ratio (ours over the floor of the same round) is reported beside the ratio of medians."""
# Attempts recorded since a round began: a walk of the primary key from the round's first id, not a count of
# every attempt of the run (a scan growing to 5,000 rows, 50 times a second, on the same two cores).
_LAST = "SELECT coalesce(max(id), 0) FROM webhook_attempt"
_DONE = "SELECT count(*) FROM webhook_attempt WHERE id > %s AND status_code = 204"


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


async def _httpx_floor(client: httpx.AsyncClient, url: str, secret: str, round_: int) -> float:
    bodies = [orjson.dumps(envelope("ping", {"n": i})) for i in range(MESSAGES)]
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        headers = signing.headers([secret], f"msg_httpx_{round_}_{i}", datetime.now(UTC), body)
        (await client.post(url, content=body, headers=headers)).raise_for_status()
    return MESSAGES / (time.perf_counter() - started)


async def _aiohttp_floor(session: aiohttp.ClientSession, url: str, secret: str, round_: int) -> float:
    bodies = [orjson.dumps(envelope("ping", {"n": i})) for i in range(MESSAGES)]
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        headers = signing.headers([secret], f"msg_aio_{round_}_{i}", datetime.now(UTC), body)
        async with session.post(url, data=body, headers=headers) as response:
            response.raise_for_status()
            await response.read()
    return MESSAGES / (time.perf_counter() - started)


@contextlib.contextmanager
def _worker(database_url: str) -> Iterator[int]:
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
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _ours(deps: Deps, watcher: psycopg.AsyncConnection[Any], endpoint_id: uuid.UUID, round_: int) -> float:
    """MESSAGES queued in one transaction while the worker waits; the clock runs from their commit until
    the last attempt is recorded."""
    before = await _count(watcher, _LAST)
    async with deps.sessionmaker.begin() as session:
        for i in range(MESSAGES):
            await queue_message(session, deps, endpoint_id, "ping", envelope("ping", {"round": round_, "n": i}), None)
    started = time.perf_counter()
    while True:
        if await _count(watcher, _DONE, before) >= MESSAGES:
            break
        await asyncio.sleep(0.02)
    return MESSAGES / (time.perf_counter() - started)


def _cpu_s(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _count(watcher: psycopg.AsyncConnection[Any], sql: str, *params: int) -> int:
    # One autocommit statement per look, not an ORM session (BEGIN, SELECT, ROLLBACK), which took ~10% of
    # the measured process's CPU.
    row = await (await watcher.execute(sql, params or None)).fetchone()
    return 0 if row is None else int(row[0])


@dataclass
class Rounds:
    ours: list[float] = field(default_factory=list)
    aiohttp: list[float] = field(default_factory=list)
    httpx: list[float] = field(default_factory=list)
    worker_cpu_s: float = 0.0
    """The worker's CPU over the counted rounds of ours."""
    aiohttp_cpu_s: float = 0.0
    """This process's CPU over the counted rounds of the bare aiohttp loop."""


async def _measure(database_url: str, url: str, secret: str) -> Rounds:
    settings = Settings(database_url=database_url, allow_private_hosts="127.0.0.1", log_level="WARNING",
                        hume_api_key="unused", hume_base_url="http://127.0.0.1:9")  # fmt: skip
    logs.configure(settings)
    rounds = Rounds()
    async with (
        build_deps(settings, pool_size=2) as deps,
        httpx.AsyncClient() as client,
        aiohttp.ClientSession() as session,
    ):
        async with deps.sessionmaker.begin() as transaction:
            await api_keys.create(transaction, name="bench", scopes=["admin"])
            owner = (await transaction.execute(text("SELECT id FROM api_key"))).scalar_one()
            endpoint = await webhook_endpoints.create(
                transaction, api_key_id=owner, url=url, events=["job.completed"], description=None, secret=secret
            )
        watcher = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        try:
            with _worker(database_url) as worker:  # up for the whole run, as a worker process is
                runs: list[tuple[list[float], Callable[[int], Awaitable[float]]]] = [
                    (rounds.ours, lambda r: _ours(deps, watcher, endpoint.id, r)),
                    (rounds.aiohttp, lambda r: _aiohttp_floor(session, url, secret, r)),
                    (rounds.httpx, lambda r: _httpx_floor(client, url, secret, r)),
                ]
                for _, run in runs:
                    await run(-1)  # warm-up of every path, not counted
                for r in range(ROUNDS):
                    # Interleaved, each first in turn: the machine's drift falls on all alike.
                    for figures, run in runs[r % 3 :] + runs[: r % 3]:
                        cpu = _cpu_s(worker) if figures is rounds.ours else time.process_time()
                        figures.append(await run(r))
                        if figures is rounds.ours:
                            rounds.worker_cpu_s += _cpu_s(worker) - cpu
                        elif figures is rounds.aiohttp:
                            rounds.aiohttp_cpu_s += time.process_time() - cpu
        finally:
            await watcher.close()
    return rounds


def run(ctx: Context) -> None:
    secret = signing.new_secret()
    with _receiver() as url, ctx.database() as database_url:
        rounds = asyncio.run(_measure(database_url, url, secret))
    each = " ".join(
        f"{o:.0f}/{a:.0f}/{h:.0f}" for o, a, h in zip(rounds.ours, rounds.aiohttp, rounds.httpx, strict=True)
    )
    print(f"(bench_outbound: rounds ours/bare aiohttp/bare httpx msg/s {each})", flush=True)
    ratios = [o / a for o, a in zip(rounds.ours, rounds.aiohttp, strict=True)]
    sent = ROUNDS * MESSAGES
    print(
        f"(bench_outbound: ours/bare aiohttp per round {' '.join(f'{x:.2f}' for x in ratios)}, median "
        f"{statistics.median(ratios):.2f}; CPU a message: the worker {rounds.worker_cpu_s / sent * 1e3:.2f} ms, "
        f"the bare aiohttp loop {rounds.aiohttp_cpu_s / sent * 1e3:.2f} ms)",
        flush=True,
    )
    ours = statistics.median(rounds.ours)
    ctx.report(
        "outbound_webhook_throughput", ours, "msg/s",
        baseline=statistics.median(rounds.aiohttp), baseline_name="bare_aiohttp_post_loop",
    )  # fmt: skip
    ctx.report(
        "outbound_webhook_throughput_paired", statistics.median(ratios), "x",
        baseline=1.0, baseline_name="bare_aiohttp_post_loop_same_round",
    )  # fmt: skip
    ctx.report(
        "outbound_webhook_throughput_httpx_floor", ours, "msg/s",
        baseline=statistics.median(rounds.httpx), baseline_name="bare_httpx_post_loop",
    )  # fmt: skip
