"""The compose topology as processes: two `python -m app serve` (RUN_WORKER=false) and two `python -m app worker`
on one Postgres, Hume (the emulator) answering slowly; one worker is killed with SIGKILL mid-run.

These are the commands the container image runs; only the engine around them is missing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest

from app.emulator.testing import EmulatorServer
from app.store import api_keys
from tests.conftest import EMULATOR_KEY, create_key, hume_environment
from tests.reliability.helpers import expected_rows, hume_predictions, wait_ready, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
JOBS = 150
HUME_DELAY_S = 0.2
STALLED_AFTER_S = 3.0
JOB_TASKS = ("submit_job", "process_event")
FETCH_LOOPS = 2
"""procrastinate workers per worker process (WORKER_FETCH_LOOPS, the default): each registers its own id."""


class Processes:
    """Subprocesses with their output in files (a pipe nobody reads would block a chatty process)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(self, name: str, command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.running[name] = (process, log)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {process.poll()}):\n{(self.directory / f'{name}.log').read_text()[-3000:]}"
            for name, (process, _) in self.running.items()
        )

    def stop(self) -> None:
        for process, _ in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, log in self.running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop()


async def submit_all(urls: list[str], key: str) -> list[dict[str, Any]]:
    """JOBS submissions spread over both APIs, a few at a time like upstream traffic."""
    limit = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:

        async def one(i: int) -> dict[str, Any]:
            # As upstream does: 503 means "retry later" (e.g. Postgres out of connection slots), and the
            # Idempotency-Key makes the retry safe.
            for _ in range(20):
                async with limit:
                    response = await client.post(
                        f"{urls[i % len(urls)]}/v1/jobs",
                        json={"urls": [f"https://example.com/scale-{i}.mp4#duration=4"]},
                        headers={"Idempotency-Key": f"scale-{i}"},
                    )
                if response.status_code != 503:
                    break
                await asyncio.sleep(0.5)
            assert response.status_code == 202, response.text
            job: dict[str, Any] = response.json()
            return job

        return list(await asyncio.gather(*(one(i) for i in range(JOBS))))


def job_workers(db: psycopg.Connection[Any]) -> set[int]:
    """Worker ids that ran (or are running) tasks of our jobs; procrastinate keeps the id on finished tasks."""
    found = db.execute(
        "SELECT DISTINCT worker_id FROM procrastinate_jobs WHERE worker_id IS NOT NULL AND task_name = ANY(%s)",
        (list(JOB_TASKS),),
    ).fetchall()
    return {int(r[0]) for r in found}


def test_two_apis_and_two_workers_complete_every_job_once_through_a_worker_kill(
    database_url: str, emulator: EmulatorServer, processes: Processes
) -> None:
    with contextlib.ExitStack() as stack:
        run_scale_out(stack, database_url, emulator, processes)


def run_scale_out(
    stack: contextlib.ExitStack, database_url: str, emulator: EmulatorServer, processes: Processes
) -> None:
    started = time.monotonic()
    emulator.set_faults(path="/v0/batch/jobs*", delay_s=HUME_DELAY_S)
    url = database_url
    # One connection for all the polling: the shared test server's connection slots are few.
    db = stack.enter_context(psycopg.connect(url, autocommit=True))

    def scalar(sql: str, *params: Any) -> Any:
        row = db.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(db.execute(sql, params).fetchall())

    base = {
        **os.environ,
        "DATABASE_URL": url,
        **hume_environment(emulator),
        "HOST": "127.0.0.1",
        "RUN_WORKER": "false",
        "LOG_LEVEL": "WARNING",
        "WORKER_HEARTBEAT_S": "0.5",
        "STALLED_AFTER_S": str(STALLED_AFTER_S),
        "RECONCILE_INTERVAL_S": "1",
        "WORKER_FETCH_LOOPS": str(FETCH_LOOPS),
    }

    def watch(check: Any, timeout: float, what: str) -> None:
        """wait_until, with the processes' logs in the failure (a worker restarted after an outage shows there)."""
        try:
            wait_until(check, timeout, what, every=0.2)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nworkers seen: {rows('SELECT * FROM procrastinate_workers')}\n{processes.logs()}"
            ) from None

    # Both APIs and the first worker start together (each spends seconds importing); the second worker
    # starts once the first has registered, so the lower worker ids are the ones to be killed.
    api_urls: list[str] = []
    apis: list[subprocess.Popen[bytes]] = []
    for n in (1, 2):
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        apis.append(processes.start(f"api{n}", "serve", {**base, "PORT": str(port), "PUBLIC_BASE_URL": api_url}))
        api_urls.append(api_url)
    # Each worker sends Hume a different API as the callback target, so both APIs take callbacks.
    doomed = processes.start("worker1", "worker", {**base, "PUBLIC_BASE_URL": api_urls[0]})
    for api_url, api in zip(api_urls, apis, strict=True):
        wait_ready(api_url, api, processes.logs)
    registered = "SELECT count(*) FROM procrastinate_workers"
    watch(lambda: scalar(registered) == FETCH_LOOPS, 30, "worker 1 to register")
    processes.start("worker2", "worker", {**base, "PUBLIC_BASE_URL": api_urls[1]})
    watch(lambda: scalar(registered) == 2 * FETCH_LOOPS, 30, "worker 2 to register")
    ids = [int(r[0]) for r in rows("SELECT id FROM procrastinate_workers ORDER BY id")]
    doomed_ids, survivor_ids = set(ids[:FETCH_LOOPS]), set(ids[FETCH_LOOPS:])

    marks = {"ready": time.monotonic() - started}
    key = create_key(url, list(api_keys.SCOPES))
    jobs = asyncio.run(submit_all(api_urls, key))
    assert len({job["id"] for job in jobs}) == JOBS
    marks["submitted"] = time.monotonic() - started

    # Mid-run: both workers have run job tasks, and the one to be killed holds some right now.
    watch(
        lambda: bool(doomed_ids & job_workers(db)) and bool(survivor_ids & job_workers(db)),
        60, "both workers to take job tasks",
    )  # fmt: skip
    doing = f"FROM procrastinate_jobs WHERE worker_id IN ({','.join(map(str, doomed_ids))}) AND status = 'doing'"
    holding = f"SELECT count(*) {doing}"
    while True:
        watch(lambda: scalar(holding) > 0, 30, "worker 1 to hold tasks")
        # Frozen first, so the tasks it holds are known for certain when SIGKILL lands.
        doomed.send_signal(signal.SIGSTOP)
        orphaned = rows(f"SELECT id {doing}")
        if orphaned:
            break
        doomed.send_signal(signal.SIGCONT)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    marks["killed"] = time.monotonic() - started
    completed_at_kill = scalar("SELECT count(*) FROM job WHERE status = 'completed'")
    assert orphaned, "the kill landed while worker 1 held no task"
    assert completed_at_kill < JOBS, "the kill came after the run"

    def all_final() -> bool:
        return int(scalar("SELECT count(*) FROM job WHERE status IN ('completed', 'failed', 'rejected')")) == JOBS

    watch(all_final, 75, "every job to end")
    marks["done"] = time.monotonic() - started
    statuses = dict(rows("SELECT status, count(*) FROM job GROUP BY status"))
    assert statuses == {"completed": JOBS}, f"{statuses}\n{processes.logs()}"
    # The killed worker's tasks were taken over: none is left `doing` under a dead worker.
    left = rows("SELECT id, status FROM procrastinate_jobs WHERE id = ANY(%s)", [r[0] for r in orphaned])
    assert all(status in ("succeeded", "failed") for _, status in left), left

    # Exactly Hume's rows for every job: nothing lost, nothing stored twice.
    counted = rows(
        "SELECT j.id::text, j.hume_job_id, j.num_predictions,"
        " (SELECT count(*) FROM prediction p WHERE p.job_id = j.id) FROM job j",
    )
    stored = {r[0]: (r[1], int(r[2]), int(r[3])) for r in counted}
    assert set(stored) == {job["id"] for job in jobs}
    emulator.set_faults(clear=True)  # the delay was for the workers, not for this check
    with ThreadPoolExecutor(8) as pool:
        hume_rows = dict(
            zip(
                stored,
                pool.map(lambda v: expected_rows(hume_predictions(emulator, EMULATOR_KEY, v[0])), stored.values()),
                strict=True,
            )
        )
    for job_id, (_, num_predictions, count) in stored.items():
        expected = hume_rows[job_id]
        assert expected > 0
        assert num_predictions == count == expected, (job_id, num_predictions, count, expected)
    # One processed event per job; any other (a poll's answer or a redelivery racing the callback after the
    # takeover) found its job already final and was ignored. None is left waiting, processing or dead.
    states = dict(rows("SELECT state, count(*) FROM inbox_event GROUP BY state"))
    assert states.get("done") == JOBS and set(states) <= {"done", "ignored"}, states
    reasons = {r[0] for r in rows("SELECT last_error FROM inbox_event WHERE state = 'ignored'")}
    assert all(reason.startswith("job already") for reason in reasons), reasons
    duplicated = scalar("SELECT count(*) FROM (SELECT 1 FROM job GROUP BY hume_job_id HAVING count(*) > 1) d")
    assert duplicated == 0

    marks["verified"] = time.monotonic() - started
    sys.stderr.write(
        f"scale-out: {JOBS} jobs through 2 APIs and 2 workers; {len(orphaned)} tasks taken over after kill -9 with "
        f"{completed_at_kill} jobs completed; seconds since start: "
        + ", ".join(f"{name} {at:.1f}" for name, at in marks.items())
        + "\n"
    )
