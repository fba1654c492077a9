"""Hume's per-organization request rate (600 a minute, HUME-V1-FACTS §4) is kept by all of the service's
processes together: two worker processes measuring at once start their Hume requests no faster than the
shared budget allows, as the emulator saw them arrive, and each reports the time it waited."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from app.emulator.testing import EmulatorServer
from app.store.request_budget import Budget
from tests.conftest import EMULATOR_KEY, ServiceFactory, start_worker, worker_environment
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_wav
from tests.servers import free_port
from tests.v1.media_server import GAPS, media_server
from tests.v1.test_v1_jobs import FINAL, rows

pytestmark = pytest.mark.slow

PER_MINUTE, BURST = 120, 2  # one request every 0.51 s after the first two
WAV_S = 6.0
CHUNK_BYTES = 32_044  # one second of 16 kHz mono 16-bit audio and the WAV header: 6 requests a job


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("media")
    make_wav(directory / "voice.wav", WAV_S, gaps=GAPS)
    with media_server(directory) as url:
        yield url


def waited_seconds(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hume_rate_budget_wait_seconds_total")
    )


def test_two_worker_processes_share_one_request_budget(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    service = make_service(run_worker=False, allow_private_hosts="127.0.0.1")
    ports = [free_port(), free_port()]
    for port in ports:
        env = worker_environment(
            service, emulator, 10.0, ALLOW_PRIVATE_HOSTS="127.0.0.1", V1_AUDIO_CHUNK_BYTES=str(CHUNK_BYTES),
            HUME_REQUESTS_PER_MINUTE=str(PER_MINUTE), HUME_RATE_BURST=str(BURST), METRICS_PORT=str(port),
            WORKER_CONCURRENCY="1",
        )  # fmt: skip
        start_worker(env, workers)
    with service.client() as client:
        body = {"urls": [f"{media}/media/voice.wav"], "backend": "v1", "models": {"prosody": {}}}
        ids = [client.post("/v1/jobs", json=body).json()["id"] for _ in range(2)]
        done = [wait_for_status(client, job_id, FINAL, timeout=90) for job_id in ids]
    assert [job["status"] for job in done] == ["completed", "completed"], done
    runs = httpx.get(
        f"{emulator.cloud_url}/v1/expression/run", params={"page_size": 100}, headers={"X-Hume-Api-Key": EMULATOR_KEY}
    ).json()["runs"]
    starts = sorted(datetime.fromisoformat(run["started_at"].replace("Z", "+00:00")).timestamp() for run in runs)
    # One run per request, each request one stored chunk (chunks end at pauses, so there are at least 6 a job).
    stored = rows(service.database_url, "SELECT count(*) FROM v1_chunk WHERE chunk >= 0")[0][0]
    assert len(starts) == stored >= 2 * int(WAV_S)
    # Both processes' requests, together: what GCRA promises, any k + BURST - 1 consecutive requests span at
    # least k intervals (a burst spread over time lets the next request follow sooner than one interval, so
    # single gaps alone would not do); unpaced, requests came 5 ms apart and this fails.
    interval = Budget("x", PER_MINUTE, BURST).interval_s
    short = [
        (i, j, round(starts[j] - starts[i], 3))
        for i, j in itertools.combinations(range(len(starts)), 2)
        if starts[j] - starts[i] < (j - i - (BURST - 1)) * interval * 0.8
    ]
    assert not short, (short[:5], starts)
    assert starts[-1] - starts[0] >= (len(starts) - BURST) * interval * 0.9
    deadline = time.monotonic() + 10
    while sum(waited_seconds(port) for port in ports) <= 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sum(waited_seconds(port) for port in ports) > 0
