"""Scaling out on one machine: job throughput with two worker processes against one, and webhook
acknowledgements with two API processes (`serve` with WEB_CONCURRENCY=2) against one.

Jobs: Hume (the emulator, in this process) answers every batch call in 200 ms. The jobs are submitted
through an API process first, with no worker running; then the workers start, and throughput is counted
between the 10th and the 90th percentile of completions (worker start-up and the last stragglers left
out). Each worker runs WORKER_CONCURRENCY=4 tasks. Acks: wrk (1 thread, 32 connections) replays fresh
signed EVI webhooks at each server in interleaved rounds; the figures are medians. Everything (Postgres,
wrk, the emulator and the service processes) shares this machine's cores.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg

from app.emulator.testing import EmulatorProcess
from app.store import api_keys
from bench import bench_ack, wrk
from bench.__main__ import Context
from bench.bench_tokens import create_key
from bench.service_process import REPO, serve

EMULATOR_KEY = "bench-hume-key"
HUME_DELAY_S = 0.2
JOBS = 240
ACK_ROUNDS = 3
ACK_SECONDS = 8
ACK_LINES = 60_000


def _env(url: str, emulator: EmulatorProcess, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUME_", "PUBLIC_BASE_URL", "PROMETHEUS"))}
    env.update(
        DATABASE_URL=url, HUME_API_KEY=EMULATOR_KEY, HUME_BASE_URL=emulator.base_url, HUME_BACKEND="batch",
        HUME_WEBHOOK_SIGNING_KEY=bench_ack.SIGNING_KEY, RUN_WORKER="false", LOG_LEVEL="WARNING",
        WORKER_CONCURRENCY="4", **extra,
    )  # fmt: skip
    return env


@contextmanager
def api(url: str, emulator: EmulatorProcess, logs: Path, name: str, processes: int = 1) -> Iterator[str]:
    settings = {
        "HUME_API_KEY": EMULATOR_KEY, "HUME_BASE_URL": emulator.base_url, "HUME_BACKEND": "batch",
        "HUME_WEBHOOK_SIGNING_KEY": bench_ack.SIGNING_KEY, "WEB_CONCURRENCY": str(processes),
        # Processes of one service share the dashboard's secret, or serve refuses to start them.
        "DASHBOARD_SECRET": "bench-scale-dashboard-secret-not-a-secret",
    }  # fmt: skip
    with serve(url, settings, log=logs / f"{name}.log") as base:
        yield base


async def _submit(base: str, key: str) -> None:
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:

        async def one(i: int) -> None:
            async with limit:
                response = await client.post("/v1/jobs", json={"urls": [f"https://example.com/s-{i}.mp4#duration=4"]})
            if response.status_code != 202:
                raise RuntimeError(f"submission answered {response.status_code}: {response.text}")

        await asyncio.gather(*(one(i) for i in range(JOBS)))


def job_throughput(ctx: Context, workers: int, logs: Path) -> float:
    """Jobs completed per second between the 10th and the 90th percentile of completions."""
    with ctx.database() as url, EmulatorProcess(api_key=EMULATOR_KEY) as emulator, ExitStack() as stack:
        emulator.set_faults(path="/v0/batch/jobs*", delay_s=HUME_DELAY_S)
        base = stack.enter_context(api(url, emulator, logs, f"jobs-api-{workers}"))
        asyncio.run(_submit(base, create_key(url, list(api_keys.SCOPES))))
        env = _env(url, emulator, PUBLIC_BASE_URL=base)
        for n in range(workers):
            log = stack.enter_context((logs / f"worker-{workers}-{n}.log").open("wb"))
            proc = subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, cwd=REPO, stdout=log, stderr=log)
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
        marks: dict[int, float] = {}
        low, high = JOBS // 10, JOBS - JOBS // 10
        deadline = time.monotonic() + 600
        with psycopg.connect(url, autocommit=True) as db:
            while high not in marks:
                row = db.execute("SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER"
                                 " (WHERE status IN ('failed', 'rejected')) FROM job").fetchone()  # fmt: skip
                assert row is not None
                done, failed = int(row[0]), int(row[1])
                if failed:
                    raise RuntimeError(f"{failed} jobs failed; see the logs")
                now = time.monotonic()
                for mark in (low, high):
                    if done >= mark and mark not in marks:
                        marks[mark] = now
                if now > deadline:
                    raise RuntimeError(f"only {done} of {JOBS} jobs completed in 600 s")
                time.sleep(0.05)
        return (high - low) / (marks[high] - marks[low])


def ack_rates(ctx: Context, logs: Path) -> dict[int, float]:
    """Median EVI webhook acks per second of `serve` with 1 and with 2 processes."""
    runs: dict[int, list[wrk.Run]] = {1: [], 2: []}
    with ctx.database() as url, EmulatorProcess(api_key=EMULATOR_KEY) as emulator, ExitStack() as stack:
        bases = {n: stack.enter_context(api(url, emulator, logs, f"ack-api-{n}", n)) for n in runs}
        for n, base in bases.items():
            wrk.run_wrk(base, bench_ack.deliveries("evi", url, 5000, logs / f"warm-{n}.tsv"), seconds=2)
        for r in range(ACK_ROUNDS):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                # Both servers store into one inbox: each run needs deliveries never sent before.
                path = bench_ack.deliveries("evi", url, ACK_LINES, logs / f"evi-{r}-{n}.tsv")
                runs[n].append(wrk.run_wrk(bases[n], path, seconds=ACK_SECONDS))
    problems = [f"{n} processes: {'; '.join(p)}" for n, rs in runs.items() for r in rs if (p := r.problems())]
    if problems:
        raise RuntimeError(f"invalid ack runs: {' | '.join(problems)}")
    for n, rs in runs.items():
        p99 = statistics.median(r.p99_us for r in rs) / 1000
        print(f"(bench_scale: ack with {n} API process(es): {[round(r.rps) for r in rs]} req/s, p99 {p99:.1f} ms)",
              file=sys.stderr, flush=True)  # fmt: skip
    return {n: statistics.median(r.rps for r in rs) for n, rs in runs.items()}


def run(ctx: Context) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        logs = Path(tmp)
        one = job_throughput(ctx, 1, logs)
        two = job_throughput(ctx, 2, logs)
        print(f"(bench_scale: {JOBS} jobs, Hume {HUME_DELAY_S * 1000:.0f} ms a call: {one:.1f} jobs/s with one "
              f"worker, {two:.1f} with two)", file=sys.stderr, flush=True)  # fmt: skip
        ctx.report("jobs_two_workers", two, "jobs/s", baseline=one, baseline_name="jobs_one_worker")
        if not wrk.available():
            print("bench ack_two_api_processes skipped: wrk not found (Debian: apt-get install wrk)", flush=True)
            return
        rates = ack_rates(ctx, logs)
        ctx.report("ack_two_api_processes", rates[2], "req/s", baseline=rates[1], baseline_name="ack_one_api_process")
