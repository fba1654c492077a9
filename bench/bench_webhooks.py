"""Batch callback ack throughput over real HTTP, as a ratio to a bare endpoint of the same server that
inserts one row per request (target >= 0.5).

Each callback is a distinct genuine event (its own job and URL token), so every request pays for the
whole ack path: token check, inbox insert and task defer in one transaction. The worker is off, so only
the ack is measured. Both endpoints are driven alike (same client, same concurrency, interleaved rounds).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.request_helpers import JSON, deps, read_body
from app.config import Settings
from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorServer
from bench.__main__ import Context
from tests.servers import free_port

EMULATOR_KEY = "bench-hume-key"
CALLBACKS = 4000
ROUNDS = 4
CONCURRENCY = 32


async def insert_one(request: Request) -> Response:
    """The baseline: read the body, insert it as one row in one transaction, answer."""
    body = await read_body(request, 1 << 20)
    async with deps(request).sessionmaker.begin() as session:
        await session.execute(text("INSERT INTO bench_row (body) VALUES (:body)"), {"body": body})
    return JSON({"status": "stored"}, status_code=202)


def _prepare(url: str, n: int) -> list[tuple[str, bytes]]:
    """n queued batch jobs with known callback tokens; returns (callback path, body) per job."""
    calls: list[tuple[str, bytes]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_row (id bigserial PRIMARY KEY, body bytea, received_at timestamptz DEFAULT now())"
        )
        with (
            conn.cursor() as cur,
            cur.copy("COPY job (id, kind, status, hume_job_id, callback_token_hash) FROM STDIN") as copy,
        ):
            for _ in range(n):
                job_id, hume_id, token = uuid.uuid4(), str(uuid.uuid4()), secrets.token_urlsafe(32)
                copy.write_row((job_id, "batch", "queued", hume_id, hashlib.sha256(token.encode()).hexdigest()))
                body = f'{{"job_id": "{hume_id}", "status": "COMPLETED"}}'.encode()
                calls.append((f"/v1/webhooks/hume/batch?job_id={job_id}&token={token}", body))
    return calls


async def _drive(base_url: str, requests: list[tuple[str, bytes]], expect: int) -> float:
    """Requests per second for `requests`, CONCURRENCY at a time over keep-alive connections."""
    queue = list(reversed(requests))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                path, body = queue.pop()
                response = await client.post(path, content=body, headers={"content-type": "application/json"})
                assert response.status_code == expect, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(requests) / (time.perf_counter() - started)


def serve() -> None:
    """The service (settings from the environment) plus the baseline route, as its own process."""
    import uvicorn

    from app.web.application import create_app

    settings = Settings.from_env()
    app = create_app(settings)
    app.router.routes.append(Route("/bench/insert-one", insert_one, methods=["POST"]))
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on")


@contextlib.contextmanager
def _server(url: str, emulator: EmulatorServer) -> Iterator[str]:
    """The server in a process of its own: a client in the same process would share its GIL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "HUME_API_KEY": EMULATOR_KEY,
        "HUME_BASE_URL": emulator.base_url,
        "PORT": str(port),
        "RUN_WORKER": "false",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "bench.bench_webhooks"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench server did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(ctx: Context) -> None:
    with ctx.database() as url, EmulatorServer(EmulatorConfig(api_key=EMULATOR_KEY)) as emulator:
        callbacks = _prepare(url, CALLBACKS)
        bare = [("/bench/insert-one", body) for _, body in callbacks]
        per_round = CALLBACKS // ROUNDS
        webhook_rps: list[float] = []
        bare_rps: list[float] = []
        with _server(url, emulator) as base:
            asyncio.run(_drive(base, bare[:200], 202))  # warm both paths' pools before measuring
            for r in range(ROUNDS):
                chunk = slice(r * per_round, (r + 1) * per_round)
                webhook_rps.append(asyncio.run(_drive(base, callbacks[chunk], 202)))
                bare_rps.append(asyncio.run(_drive(base, bare[chunk], 202)))
        with psycopg.connect(url, autocommit=True) as conn:
            stored = conn.execute("SELECT count(*) FROM inbox_event").fetchone()
        assert stored is not None and stored[0] == CALLBACKS, stored
        webhook = statistics.median(webhook_rps)
        baseline = statistics.median(bare_rps)
        ctx.report("webhook_ack_throughput", webhook, "req/s", baseline=baseline, baseline_name="insert_one_row_rps")


if __name__ == "__main__":
    serve()
