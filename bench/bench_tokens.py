"""GET /api/hume/auth over real HTTP: what a cached token adds to a bare endpoint (/healthz) of the same app,
and what a cold fetch costs when Hume takes the 100-300 ms the seed expects (emulator delay 200 ms)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from app.emulator.testing import EmulatorProcess
from app.store import api_keys
from app.store.db import make_engine, make_sessionmaker
from bench.__main__ import Context
from bench.service_process import serve

EMULATOR_KEY = "bench-hume-key"
REQUESTS = 2000
HUME_DELAY_S = 0.2


def create_key(database_url: str, scopes: list[str]) -> str:
    async def create() -> str:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await api_keys.create(session, name="bench", scopes=scopes)
        finally:
            await engine.dispose()

    return asyncio.run(create())


@contextmanager
def running_service(ctx: Context) -> Iterator[tuple[httpx.Client, EmulatorProcess]]:
    """The service and its own emulator, each in a process of its own, on a fresh database; a keep-alive client."""
    with ctx.database() as url, EmulatorProcess(api_key=EMULATOR_KEY) as emulator:
        hume = {"HUME_API_KEY": EMULATOR_KEY, "HUME_BASE_URL": emulator.base_url}
        # The bench emulator accepts any secret.
        with serve(url, {**hume, "HUME_SECRET_KEY": "bench-secret"}) as server_url:
            key = create_key(url, list(api_keys.SCOPES))
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server_url, headers=headers, timeout=30) as client:
                yield client, emulator


def latencies_ms(call: Callable[[], httpx.Response], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


def interleaved_calls(
    first: Callable[[], httpx.Response], second: Callable[[], httpx.Response], n: int, rounds: int = 4
) -> tuple[list[float], list[float]]:
    """Alternating blocks, so drift on a noisy machine hits both series alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a += latencies_ms(first, n // rounds)
        b += latencies_ms(second, n // rounds)
    return a, b


def run(ctx: Context) -> None:
    with running_service(ctx) as (client, emulator):
        # Cold fetches: each after a fresh service start would be slow to measure; a restart-free way is
        # to time the first call, which is the cold one, with Hume answering in HUME_DELAY_S.
        emulator.set_faults(path="/oauth2-cc/token", delay_s=HUME_DELAY_S)
        cold = latencies_ms(lambda: client.get("/api/hume/auth"), 1)[0]
        latencies_ms(lambda: client.get("/healthz"), 200)  # warm-up
        latencies_ms(lambda: client.get("/api/hume/auth"), 200)
        bare, auth = interleaved_calls(lambda: client.get("/healthz"), lambda: client.get("/api/hume/auth"), REQUESTS)
        upstream = emulator.calls().get("POST /oauth2-cc/token", 0)
    baseline = p50(bare)
    ctx.report("tokens_hit_p50", p50(auth), "ms", baseline=baseline, baseline_name="healthz_p50")
    ctx.report("tokens_hit_added_p50", p50(auth) - baseline, "ms", baseline=baseline, baseline_name="healthz_p50")
    ctx.report(
        "tokens_hit_p99",
        statistics.quantiles(auth, n=100)[98],
        "ms",
        baseline=statistics.quantiles(bare, n=100)[98],
        baseline_name="healthz_p99",
    )
    ctx.report("tokens_cold_fetch", cold, "ms", baseline=baseline, baseline_name="healthz_p50")
    ctx.report("tokens_upstream_calls", upstream, "calls", baseline=REQUESTS + 201, baseline_name="auth_requests")
