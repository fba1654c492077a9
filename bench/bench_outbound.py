"""Outbound webhook delivery throughput: our queue (one task per attempt, signed through the egress guard,
every attempt recorded in Postgres) against the floor, a bare loop POSTing the same signed bodies with one
shared httpx client, in the same run. The receiver answers 204 at once, in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
from sqlalchemy import text

from app import logs
from app.config import Settings, libpq_url
from app.inbox.outbox import envelope, queue_message
from app.inbox.task_queue import run_worker
from app.notifications import signing
from app.store import api_keys, webhook_endpoints
from app.wiring import build_deps
from bench.__main__ import Context
from tests.servers import free_port

MESSAGES = 300
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


async def _floor(url: str, secret: str) -> float:
    bodies = [orjson.dumps(envelope("ping", {"n": i})) for i in range(MESSAGES)]
    async with httpx.AsyncClient() as client:
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            headers = signing.headers([secret], f"msg_{i}", datetime.now(UTC), body)
            (await client.post(url, content=body, headers=headers)).raise_for_status()
        return MESSAGES / (time.perf_counter() - started)


async def _ours(database_url: str, url: str, secret: str) -> float:
    settings = Settings(database_url=database_url, allow_private_hosts="127.0.0.1", log_level="WARNING",
                        hume_api_key="unused", hume_base_url="http://127.0.0.1:9")  # fmt: skip
    logs.configure(settings)  # as the server does: WARNING keeps the per-attempt lines out of the timing
    async with build_deps(settings, pool_size=6) as deps:
        async with deps.sessionmaker.begin() as session:
            await api_keys.create(session, name="bench", scopes=["admin"])
            owner = (await session.execute(text("SELECT id FROM api_key"))).scalar_one()
            endpoint = await webhook_endpoints.create(
                session, api_key_id=owner, url=url, events=["job.completed"], description=None, secret=secret
            )
            for i in range(MESSAGES):
                await queue_message(session, deps, endpoint.id, "ping", envelope("ping", {"n": i}), None)
        # The bench's own watching runs in the measured process: one autocommit statement per look, not an
        # ORM session (BEGIN, SELECT, ROLLBACK), which took ~10% of this process's CPU every 50 ms.
        watcher = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        started = time.perf_counter()
        worker = asyncio.create_task(run_worker(deps))
        try:
            while True:
                row = await (await watcher.execute(_DONE)).fetchone()
                if row is not None and row[0] >= MESSAGES:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await watcher.close()
    return MESSAGES / elapsed


def run(ctx: Context) -> None:
    secret = signing.new_secret()
    with _receiver() as url, ctx.database() as database_url:
        floor = asyncio.run(_floor(url, secret))
        ours = asyncio.run(_ours(database_url, url, secret))
    ctx.report("outbound_webhook_throughput", ours, "msg/s", baseline=floor, baseline_name="bare_httpx_post_loop")
