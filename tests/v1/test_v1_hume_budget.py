"""What Hume bills for v1 jobs, end to end: media made with PyAV served over a socket, the service and the
emulator's v1 API (which bills as HUME-V1-FACTS §6 says) on real sockets, real Postgres, the CLI run as users
run it. Metered seconds per job and per tenant, and each tenant's daily budget of them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hume_expression_measurement import AsyncExpressionMeasurementClient, ExpressionMeasurementClientEnvironment
from prometheus_client.parser import text_string_to_metric_families

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory, create_key
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_mp4, make_wav
from tests.v1.media_server import EVERY_FACE, media_server
from tests.v1.test_v1_jobs import FINAL, rows
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
TENANT_SCOPES = ["submit", "read", "webhooks"]
# At most 3 s of audio a request (16 kHz, 16-bit: 96,000 bytes plus the WAV header; cut in the quietest window
# before that): an 8 s WAV goes in four requests, a 4 s one in two, each billed Hume's 10 s minimum, so a
# budget counts requests in tens of seconds.
SHORT_CHUNKS = {"v1_audio_chunk_bytes": 96_044}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("billed-media")
    make_wav(directory / "long.wav", 25.0)
    make_wav(directory / "short.wav", 4.0)
    make_wav(directory / "eight.wav", 8.0)
    make_wav(directory / "four.wav", 4.0)
    make_mp4(directory / "silent.mp4", 20.0, audio=False)
    with media_server(directory) as url:
        yield url


def _emulator_runs(emulator: EmulatorServer) -> list[Any]:
    """Every run Hume (the emulator) recorded, with its metered_seconds, read with the official SDK."""

    async def listed() -> list[Any]:
        environment = ExpressionMeasurementClientEnvironment(base=emulator.cloud_url, production=emulator.cloud_url)
        client = AsyncExpressionMeasurementClient(api_key=EMULATOR_KEY, environment=environment)
        return list((await client.runs.list(page_size=200)).runs)

    return asyncio.run(listed())


def _metered_total(service: Service, endpoint: str) -> float:
    text = httpx.get(f"{service.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if (
                s.name == "hume_estimated_seconds_total"
                and s.labels.get("endpoint") == endpoint
                and s.labels.get("mode") == "file"
            ):
                return float(s.value)
    return 0.0


def run_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


def _submit(client: httpx.Client, urls: list[str], models: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json={"urls": urls, "backend": "v1", "models": models})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _usage(service: Service, job_id: str) -> list[Any]:
    return rows(
        service.database_url,
        "SELECT medium, seconds, state, run_id, tenant FROM hume_usage WHERE job_id = :id ORDER BY id", id=job_id
    )  # fmt: skip


def test_metered_seconds_follow_hume_billing(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """Audio is billed by its seconds, video by 1/3 s an image, each request at least 10 s (HUME-V1-FACTS §6):
    a 25 s WAV in one request is 25 s, a 4 s WAV is 10 s, 60 frames in requests of 40 and 20 are 13.33 s + 10 s.
    The job's JSON, the metric and the runs Hume recorded all agree."""
    service = make_service(allow_private_hosts="127.0.0.1", v1_frames_per_request=40)
    audio_before, video_before = _metered_total(service, "audio"), _metered_total(service, "video")
    urls = [f"{media}/media/long.wav", f"{media}/media/short.wav", f"{media}/media/silent.mp4"]
    with service.client() as client:
        job = wait_for_status(client, _submit(client, urls, {"prosody": {}, "face": EVERY_FACE}), FINAL, timeout=90)
    assert job["status"] == "completed", job
    expected = {"audio": 25.0 + 10.0, "video": 40 / 3 + 10.0}
    assert job["hume_metered_seconds"] == pytest.approx(sum(expected.values()), abs=1e-3)

    usage = _usage(service, job["id"])
    assert sorted((u.medium, round(u.seconds, 3)) for u in usage) == [
        ("audio", 10.0), ("audio", 25.0), ("video", 10.0), ("video", 13.333)
    ]  # fmt: skip
    assert all(u.state == "billed" and u.tenant == "default" for u in usage)
    # The images sent: 20 s at 3 frames/s, in requests of at most 40.
    frames = rows(service.database_url, "SELECT jsonb_array_length(frames) AS n FROM v1_chunk WHERE job_id = :id"
                  " AND medium = 'video' AND chunk >= 0 ORDER BY chunk", id=job["id"])  # fmt: skip
    assert [f.n for f in frames] == [40, 20]

    # Hume's own account of each run (the emulator meters as §6 says): our estimate, run by run.
    hume = {r.run_id: r.metered_seconds for r in _emulator_runs(emulator)}
    assert len(hume) == 4
    for u in usage:
        assert hume[u.run_id] == pytest.approx(u.seconds, abs=1e-3)

    assert _metered_total(service, "audio") - audio_before == pytest.approx(expected["audio"], abs=1e-3)
    assert _metered_total(service, "video") - video_before == pytest.approx(expected["video"], abs=1e-3)
    with service.client() as client:
        listed = client.get("/v1/jobs").json()["items"]
    assert listed[0]["hume_metered_seconds"] == job["hume_metered_seconds"]


def test_spent_budget_stops_the_job_failed_keeping_what_was_measured(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """Tenant A's budget (25 s a day) pays for two 10 s requests of an 8 s WAV cut in four: the third is never
    sent, the job ends failed (hume_budget_exhausted, naming the tenant's budget and when it resets) with the
    first two chunks' predictions queryable, and A's endpoint hears job.failed. Tenant B's budget is its own.
    Raising A's budget with the CLI lets A's next upload through."""
    service = make_service(allow_private_hosts="127.0.0.1", hume_tenant_daily_seconds=25, **SHORT_CHUNKS)
    key_a = create_key(service.database_url, TENANT_SCOPES, name="a", tenant="tenant-a")
    key_b = create_key(service.database_url, TENANT_SCOPES, name="b", tenant="tenant-b")
    wav = f"{media}/media/eight.wav"
    with service.client(key_a) as a, service.client(key_b) as b, Receiver() as hears_a:
        endpoint = a.post("/v1/webhook-endpoints", json={"url": hears_a.url, "events": ["job.failed"]})
        assert endpoint.status_code == 201, endpoint.text
        hears_a.secrets.append(endpoint.json()["secret"])

        job = wait_for_status(a, _submit(a, [wav], {"prosody": {}}), FINAL, timeout=60)
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "hume_budget_exhausted"
        message = job["error"]["message"]
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        assert "'tenant-a'" in message and "25 " in message and f"resets at {tomorrow}T00:00:00Z" in message
        assert job["hume_metered_seconds"] == pytest.approx(20.0)

        # What was measured is kept: the two chunks sent (0-5 s), and their predictions, served like any job's.
        stored = rows(service.database_url, "SELECT chunk FROM v1_chunk WHERE job_id = :id AND chunk >= 0"
                      " ORDER BY chunk", id=job["id"])  # fmt: skip
        assert [r.chunk for r in stored] == [0, 1]
        assert job["num_predictions"] > 0
        summary = a.get(f"/v1/jobs/{job['id']}/summary").json()["models"]
        assert summary["prosody"]["predictions"] == job["num_predictions"]
        ends = rows(service.database_url, "SELECT max(time_end) AS latest FROM prediction WHERE job_id = :id",
                    id=job["id"])  # fmt: skip
        assert ends[0].latest <= 5.05  # nothing past the two chunks sent
        assert len(_emulator_runs(emulator)) == 2, "the third request was never sent"

        [delivery] = hears_a.wait_for(1)
        assert delivery.verified_by and delivery.payload["type"] == "job.failed"
        assert delivery.payload["data"]["job"]["error"]["code"] == "hume_budget_exhausted"

        # Another tenant: its own 25 s (a 4 s WAV: two 10 s requests), untouched by A's spending.
        other = wait_for_status(b, _submit(b, [f"{media}/media/four.wav"], {"prosody": {}}), FINAL, timeout=60)
        assert other["status"] == "completed" and other["hume_metered_seconds"] == pytest.approx(20.0), other

        # A again: still stopped at the first request (20 s spent, 10 s more would pass 25).
        again = wait_for_status(a, _submit(a, [wav], {"prosody": {}}), FINAL, timeout=60)
        assert again["error"]["code"] == "hume_budget_exhausted" and again["hume_metered_seconds"] == 0

        raised = run_cli(service.database_url, "tenant-budget", "tenant-a", "--seconds", "60")
        assert raised.returncode == 0, raised.stderr
        assert "60 s" in raised.stdout and "20.0 s spent, 40.0 s left" in raised.stdout

        done = wait_for_status(a, _submit(a, [wav], {"prosody": {}}), FINAL, timeout=60)
        assert done["status"] == "completed" and done["hume_metered_seconds"] == pytest.approx(40.0), done

    shown = run_cli(service.database_url, "tenant-budget", "tenant-a", "--show")
    assert shown.returncode == 0, shown.stderr
    assert "its own" in shown.stdout and "60.0 s spent, 0.0 s left" in shown.stdout
    # Back to the setting (the CLI process reads HUME_TENANT_DAILY_SECONDS like the service).
    reset = run_cli(service.database_url, "tenant-budget", "tenant-a", "--default", HUME_TENANT_DAILY_SECONDS="25")
    assert reset.returncode == 0, reset.stderr
    assert "HUME_TENANT_DAILY_SECONDS" in reset.stdout and "60.0 s spent, 0.0 s left" in reset.stdout


def test_two_jobs_of_one_tenant_cannot_overspend(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """Two jobs of one tenant submitted together (the worker runs four tasks at once), each needing 40 s (four
    10 s requests), against a 50 s budget: exactly five requests reach Hume, whose runs bill 50 s in all, and at
    least one job ends hume_budget_exhausted. (tests/integration/test_hume_usage.py races the reservations
    themselves.)"""
    service = make_service(allow_private_hosts="127.0.0.1", hume_tenant_daily_seconds=50, **SHORT_CHUNKS)
    wav = f"{media}/media/eight.wav"
    with service.client() as client:
        ids = [_submit(client, [wav], {"prosody": {}}) for _ in range(2)]
        ended = [wait_for_status(client, job_id, FINAL, timeout=60) for job_id in ids]
    assert "failed" in {j["status"] for j in ended}, ended
    assert {j["error"]["code"] for j in ended if j["status"] == "failed"} == {"hume_budget_exhausted"}
    assert sum(j["hume_metered_seconds"] for j in ended) == pytest.approx(50.0)
    runs = _emulator_runs(emulator)
    assert len(runs) == 5 and sum(r.metered_seconds for r in runs) == pytest.approx(50.0)


def test_cli_refuses_a_negative_budget(database_url: str) -> None:
    result = run_cli(database_url, "tenant-budget", "tenant-a", "--seconds", "-5")
    assert result.returncode == 2 and "--seconds" in result.stderr and "-5" in result.stderr
    # Nothing was stored: the default applies.
    shown = run_cli(database_url, "tenant-budget", "tenant-a", HUME_TENANT_DAILY_SECONDS="36000")
    assert "HUME_TENANT_DAILY_SECONDS" in shown.stdout and "36000 s (10 h)" in shown.stdout
