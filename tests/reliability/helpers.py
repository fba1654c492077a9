"""What the reliability tests look at: rows in the service's database and the emulator's view of a job."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg

from app.emulator.testing import EmulatorServer

FINAL = {"completed", "failed", "rejected"}


def scalar(database_url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def inbox_count(database_url: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM inbox_event"))


def prediction_count(database_url: str, job_id: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM prediction WHERE job_id = %s", job_id))


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def wait_ready(url: str, process: subprocess.Popen[bytes], logs: Callable[[], str], timeout: float = 30) -> None:
    """Until a `python -m app serve` process answers /readyz; its exit before then fails with `logs()`."""

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited before it was ready\n{logs()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, timeout, f"{url}/readyz", every=0.1)


def wait_final(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job.get("status") in FINAL else None

    result: dict[str, Any] = wait_until(check, timeout, f"job {job_id} to end", every=0.1)
    return result


def emulator_job(emulator: EmulatorServer, hume_job_id: str) -> dict[str, Any]:
    jobs = httpx.get(f"{emulator.base_url}/_emulator/jobs", timeout=10).json()["jobs"]
    for job in jobs:
        if job["job_id"] == hume_job_id:
            return dict(job)
    raise AssertionError(f"the emulator has no job {hume_job_id}")


def callback_url_of(emulator: EmulatorServer, hume_job_id: str) -> str:
    url = emulator_job(emulator, hume_job_id)["request"]["callback_url"]
    assert isinstance(url, str)
    return url


def token_of(callback_url: str) -> str:
    return parse_qs(urlsplit(callback_url).query)["token"][0]


def hume_predictions(emulator: EmulatorServer, key: str, hume_job_id: str, timeout_s: float = 20) -> bytes:
    """The job's predictions as Hume serves them, once it has finished (the emulator answers 400 before)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(
            f"{emulator.base_url}/v0/batch/jobs/{hume_job_id}/predictions", headers={"X-Hume-Api-Key": key}, timeout=30
        )
        if response.status_code != 400 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    response.raise_for_status()
    return response.content


def completed_body(hume_job_id: str, predictions: bytes) -> bytes:
    return b'{"job_id":"' + hume_job_id.encode() + b'","status":"COMPLETED","predictions":' + predictions + b"}"


def expected_rows(document: bytes) -> int:
    """Predictions in a Hume document, counted from plain JSON (independently of our decoder and database)."""
    total = 0
    for source in json.loads(document):
        for file in (source.get("results") or {}).get("predictions") or []:
            for model in (file.get("models") or {}).values():
                for group in (model or {}).get("grouped_predictions") or []:
                    total += len(group.get("predictions") or [])
    return total
