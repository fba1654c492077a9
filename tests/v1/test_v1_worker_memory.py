"""Peak memory of a real `python -m app worker` process (its VmHWM) running v1 jobs over hostile media at once:
four 3 MB MOVs of four 16000x16000 PNGs each (768 MB a decoded picture). Unbounded, one such job added gigabytes
to the worker; refused from their headers, four of them add about what opening four files does."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import ServiceFactory, start_worker, worker_environment
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_mp4, make_png_mov
from tests.v1.media_server import media_server
from tests.v1.test_v1_jobs import FINAL, rows

pytestmark = pytest.mark.slow

JOBS = 4
# What the README states a job over a hostile file adds at most; measured: a few MB.
BOUND_MB = 100


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("hostile")
    make_mp4(directory / "warm.mp4", 2.0)
    make_png_mov(directory / "huge.mov", 16000, 16000)
    with media_server(directory) as url:
        yield url


def high_water_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kb / 1024


def test_hostile_pictures_do_not_grow_the_worker(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    service = make_service(run_worker=False, allow_private_hosts="127.0.0.1")
    env = worker_environment(service, emulator, 30.0, ALLOW_PRIVATE_HOSTS="127.0.0.1", WORKER_CONCURRENCY=str(JOBS))
    worker = start_worker(env, workers)
    with service.client() as client:
        # A first, ordinary job warms the worker (imports, pools, PyAV) so that the baseline is a working one.
        warm = client.post("/v1/jobs", json={"urls": [f"{media}/media/warm.mp4"], "backend": "v1"}).json()
        assert wait_for_status(client, warm["id"], FINAL, timeout=120)["status"] == "completed"
        baseline = high_water_mb(worker.pid)
        body = {"urls": [f"{media}/media/huge.mov"], "backend": "v1", "models": {"face": {}}}
        ids = [client.post("/v1/jobs", json=body).json()["id"] for _ in range(JOBS)]
        for job_id in ids:
            assert wait_for_status(client, job_id, FINAL, timeout=300)["status"] == "completed"
        peak = high_water_mb(worker.pid)
        # The numbers the README quotes, shown by `pytest -s`.
        print(f"worker VmHWM: {baseline:.0f} MB warm, {peak:.0f} MB after {JOBS} hostile jobs at once")  # noqa: T201
    codes = rows(
        service.database_url, "SELECT error_code FROM v1_chunk WHERE chunk = -1 AND job_id = ANY(CAST(:ids AS uuid[]))",
        ids=ids,
    )  # fmt: skip
    assert [r.error_code for r in codes] == ["media_frame_too_large"] * JOBS
    assert peak - baseline < BOUND_MB, (baseline, peak)
