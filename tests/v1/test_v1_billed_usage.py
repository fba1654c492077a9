"""What Hume billed, end to end: v1 jobs over media made with PyAV, the service and the emulator's v1 API and
runs API (HUME-V1-FACTS §6) on real sockets, real Postgres. Each request's run is read from the runs API after
Hume answered (late runs read on a retry, never-listed ones keep our estimate), Hume's figure replaces the
estimate for the job and the tenant's day, /v1/usage groups and prices it, and the reconciler reports the runs
Hume billed that no job of ours owns."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from hume_expression_measurement import AsyncExpressionMeasurementClient, ExpressionMeasurementClientEnvironment
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from app.config.sources import libpq_url
from app.emulator.testing import EmulatorServer
from app.usage import billed_runs
from app.wiring import build_deps
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory, create_key, service_settings
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_mp4, make_wav
from tests.v1.media_server import EVERY_FACE, media_server
from tests.v1.test_v1_jobs import FINAL, rows

TENANT_SCOPES = ["submit", "read"]
QUICK_READS = {"allow_private_hosts": "127.0.0.1", "hume_run_read_delay_s": 0.2}
"""Runs read 0.2 s after Hume answered, then 0.4, 0.8 ... s apart (HUME_RUN_READ_DELAY_S, default 30 s)."""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("billed-runs-media")
    make_wav(directory / "long.wav", 25.0)
    make_wav(directory / "short.wav", 4.0)
    make_mp4(directory / "silent.mp4", 20.0, audio=False)
    with media_server(directory) as url:
        yield url


def _client(emulator: EmulatorServer) -> AsyncExpressionMeasurementClient:
    environment = ExpressionMeasurementClientEnvironment(base=emulator.cloud_url, production=emulator.cloud_url)
    return AsyncExpressionMeasurementClient(api_key=EMULATOR_KEY, environment=environment)


def _hume_runs(emulator: EmulatorServer) -> dict[str, float]:
    """Every run Hume (the emulator) recorded and its metered_seconds, read with the official SDK."""

    async def listed() -> dict[str, float]:
        page = await _client(emulator).runs.list(page_size=200)
        return {r.run_id: r.metered_seconds for r in page.runs}

    return asyncio.run(listed())


def _measure_directly(emulator: EmulatorServer, wav: Path) -> str:
    """A request made at Hume with the organization's key, not by any job of ours: its run id."""

    audio = wav.read_bytes()

    async def measure() -> str:
        response = await _client(emulator).audio.measure(file=("direct.wav", audio, "audio/wav"))
        return response.run_id

    return asyncio.run(measure())


def _execute(database_url: str, sql: str, **params: Any) -> None:
    engine = create_engine(libpq_url(database_url).replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _unowned_check_due(database_url: str) -> None:
    """The unowned-runs check as if it last ran two minutes ago: due for a checker every 60 s (the test's own,
    `hume_unowned_runs_interval_s=60`), not for the service's (hourly), whose reconciler could otherwise claim
    it between a reset and the test's call and leave the test's call nothing to do."""
    _execute(
        database_url,
        "INSERT INTO hume_run_check (name, ran_at) VALUES (:name, now() - interval '120 seconds')"
        " ON CONFLICT (name) DO UPDATE SET ran_at = EXCLUDED.ran_at",
        name=billed_runs.UNOWNED_CHECK,
    )


def _submit(client: httpx.Client, urls: list[str], models: dict[str, Any], **extra: Any) -> str:
    response = client.post("/v1/jobs", json={"urls": urls, "backend": "v1", "models": models, **extra})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _usage(service: Service, job_id: str) -> list[Any]:
    return rows(
        service.database_url,
        "SELECT run_id, seconds, billed_seconds, billing, billing_tries FROM hume_usage WHERE job_id = :id ORDER BY id",
        id=job_id,
    )


def _settled(service: Service, job_id: str, timeout: float = 30) -> list[Any]:
    """The job's usage rows once none waits to be read any more."""
    deadline = time.monotonic() + timeout
    while True:
        usage = _usage(service, job_id)
        if usage and all(u.billing != "pending" for u in usage):
            return usage
        assert time.monotonic() < deadline, f"runs still to be read: {usage}"
        time.sleep(0.2)


def _segments(html: str) -> dict[str, list[str]]:
    """The usage chart's series and their bars' titles ("<day>: <seconds> s")."""
    found: dict[str, list[str]] = {}
    for name, bars in re.findall(r'<g data-series="([^"]+)" data-bars="\d+">(.*?)</g>', html):
        found[name] = [title.split(", ", 1)[1] for title in re.findall(r"<title>([^<]+)</title>", bars)]
    return found


def _reads(outcome: str) -> float:
    return REGISTRY.get_sample_value("hume_run_reads_total", {"outcome": outcome}) or 0.0


def test_billed_seconds_are_hume_runs_metered_seconds(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """A job of a 25 s WAV, a 4 s WAV and 20 s of video (60 frames in requests of 40 and 20): each request's
    billed seconds are what Hume's runs API says for its run (read here with the official SDK), and the job's
    hume_metered_seconds is their sum."""
    service = make_service(**QUICK_READS, v1_frames_per_request=40)
    urls = [f"{media}/media/long.wav", f"{media}/media/short.wav", f"{media}/media/silent.mp4"]
    with service.client() as client:
        job_id = _submit(client, urls, {"prosody": {}, "face": EVERY_FACE})
        assert wait_for_status(client, job_id, FINAL, timeout=90)["status"] == "completed"
        usage = _settled(service, job_id)
        job = client.get(f"/v1/jobs/{job_id}").json()
    hume = _hume_runs(emulator)
    assert len(usage) == 4 and {u.run_id for u in usage} == set(hume)
    for u in usage:
        assert u.billing == "hume" and u.billing_tries == 1
        assert u.billed_seconds == pytest.approx(hume[u.run_id], abs=1e-6)
    assert job["hume_metered_seconds"] == pytest.approx(sum(hume.values()), abs=1e-3)
    assert sorted(round(s, 3) for s in hume.values()) == [10.0, 10.0, 13.333, 25.0]


def test_runs_due_together_are_read_from_the_runs_list(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str, database_url: str
) -> None:
    """Runs due at once are read from one page of the runs list (one request for up to 200 runs) instead of one
    request each: a 25 s WAV sent in 3 s requests (at most 96,044 bytes of 16 kHz audio each) has nine or more
    runs, all read with a single list request and every figure equal to Hume's."""
    service = make_service(**{**QUICK_READS, "hume_run_read_delay_s": 3600}, v1_audio_chunk_bytes=96_044)
    with service.client() as client:
        job_id = _submit(client, [f"{media}/media/long.wav"], {"prosody": {}})
        assert wait_for_status(client, job_id, FINAL, timeout=60)["status"] == "completed"
    usage = _usage(service, job_id)
    assert len(usage) >= 9 and all(u.billing == "pending" for u in usage)
    _execute(database_url, "UPDATE hume_usage SET billing_due_at = now()")  # as if the hour had passed
    before = emulator.calls()

    async def read() -> None:
        async with build_deps(service_settings(database_url, emulator), pool_size=2) as deps:
            await billed_runs.read_billed(deps)

    asyncio.run(read())
    after = emulator.calls()
    assert after.get("GET /v1/expression/run", 0) - before.get("GET /v1/expression/run", 0) == 1
    assert after.get("GET /v1/expression/run/{run_id}", 0) == before.get("GET /v1/expression/run/{run_id}", 0)
    hume = _hume_runs(emulator)
    settled = _usage(service, job_id)
    assert all(u.billing == "hume" and u.billed_seconds == pytest.approx(hume[u.run_id]) for u in settled)


def test_hume_figure_replaces_the_estimate_and_unowned_runs_are_reported(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str, tmp_path: Path, database_url: str
) -> None:
    """Hume bills one request 12.5 s where we estimated 10 s (its minimum for a 4 s WAV): the job, the tenant's
    day (its budget) and /v1/usage count 12.5 s, the estimate stays beside it. A run made directly at Hume with
    the organization's key is reported by the reconciler's check as owned by no job; the job's run is not."""
    wav = make_wav(tmp_path / "direct.wav", 3.0, rate=16_000)  # what Hume takes (HUME-V1-FACTS §4)
    direct = _measure_directly(emulator, wav)
    run = httpx.get(f"{emulator.cloud_url}/v1/expression/run/{direct}", headers={"X-Hume-Api-Key": EMULATOR_KEY})
    assert run.status_code == 200, run.text
    billed_otherwise = {**run.json(), "metered_seconds": 12.5}
    emulator.set_faults(path="/v1/expression/run/{run_id}", method="GET", status=200, body=billed_otherwise, times=1)

    service = make_service(**QUICK_READS, hume_tenant_daily_seconds=100)
    with service.client() as client:
        job_id = _submit(client, [f"{media}/media/short.wav"], {"prosody": {}})
        assert wait_for_status(client, job_id, FINAL, timeout=60)["status"] == "completed"
        [usage] = _settled(service, job_id)
        assert (usage.billing, usage.seconds, usage.billed_seconds) == ("hume", 10.0, 12.5)
        assert client.get(f"/v1/jobs/{job_id}").json()["hume_metered_seconds"] == pytest.approx(12.5)
        report = client.get("/v1/usage", params={"group_by": "tenant"}).json()
    [day] = rows(service.database_url, "SELECT seconds FROM hume_tenant_day WHERE tenant = 'default'")
    assert day.seconds == pytest.approx(12.5)
    assert report["items"] == [
        {"group": {"tenant": "default"}, "metered_seconds": 12.5, "estimated_seconds": 10.0, "requests": 1,
         "billed_by_hume": 1, "decision_input_tokens": 0, "decision_windows": 0}
    ]  # fmt: skip

    # The check runs at most once a period by any process; as if its last run was a period ago.
    _unowned_check_due(database_url)

    async def check() -> int:
        settings = service_settings(
            database_url, emulator, hume_unowned_runs_grace_s=0, hume_unowned_runs_interval_s=60
        )
        async with build_deps(settings, pool_size=1) as deps:
            return await billed_runs.report_unowned(deps)

    with structlog.testing.capture_logs() as logs:
        looked_at = asyncio.run(check())
    assert looked_at == 2  # the job's run and the direct one
    assert REGISTRY.get_sample_value("hume_unowned_runs") == 1
    [line] = [entry for entry in logs if entry["event"] == "hume runs no job owns"]
    assert line["run_ids"] == [direct] and line["seconds"] == pytest.approx(10.0)
    # Claimed: a second check within the hour lists nothing.
    with structlog.testing.capture_logs():
        assert asyncio.run(check()) == 0


def test_a_late_run_is_read_on_a_retry_and_a_missing_one_keeps_the_estimate(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """Runs "may appear late and are rarely not recorded" (HUME-V1-FACTS §6): a run the runs API answers 404
    twice is read on the third try; one it never lists keeps our estimate, marked so, after HUME_RUN_READ_TRIES."""
    service = make_service(**QUICK_READS, hume_run_read_tries=3)
    late_before, estimate_before = _reads("late"), _reads("estimate")
    emulator.set_faults(path="/v1/expression/run/{run_id}", status=404, times=2)
    with service.client() as client:
        late = _submit(client, [f"{media}/media/short.wav"], {"prosody": {}})
        assert wait_for_status(client, late, FINAL, timeout=60)["status"] == "completed"
        [read] = _settled(service, late)
        assert (read.billing, read.billing_tries, read.billed_seconds) == ("hume", 3, 10.0)
        assert emulator.calls()["GET /v1/expression/run/{run_id}"] == 3  # one request a read
        assert _reads("late") - late_before == 2

        emulator.set_faults(path="/v1/expression/run/{run_id}", status=404, times=50)
        missing = _submit(client, [f"{media}/media/long.wav"], {"prosody": {}})
        assert wait_for_status(client, missing, FINAL, timeout=60)["status"] == "completed"
        [kept] = _settled(service, missing)
        assert (kept.billing, kept.billing_tries, kept.billed_seconds, kept.seconds) == ("estimate", 3, None, 25.0)
        assert _reads("estimate") - estimate_before == 1
        assert client.get(f"/v1/jobs/{missing}").json()["hume_metered_seconds"] == pytest.approx(25.0)


def test_usage_groups_and_prices_by_tenant_and_metadata(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """Two tenants' jobs for two customers (job metadata): /v1/usage groups Hume's billed seconds by tenant and
    metadata.customer, prices them at HUME_PRICE_PER_MINUTE, shows a tenant only its own, and shows an admin
    key every tenant. A grouping it does not know is a 422 naming group_by."""
    service = make_service(**QUICK_READS, hume_price_per_minute=0.6)
    key_a = create_key(service.database_url, TENANT_SCOPES, name="a", tenant="tenant-a")
    key_b = create_key(service.database_url, TENANT_SCOPES, name="b", tenant="tenant-b")
    short, long = f"{media}/media/short.wav", f"{media}/media/long.wav"
    with service.client(key_a) as a, service.client(key_b) as b, service.client() as admin:
        submitted = [
            (a, _submit(a, [short], {"prosody": {}}, metadata={"customer": "acme"})),
            (a, _submit(a, [long], {"prosody": {}}, metadata={"customer": "globex"})),
            (a, _submit(a, [short], {"prosody": {}}, metadata={"customer": "acme"})),
            (b, _submit(b, [long], {"prosody": {}}, metadata={"customer": "acme"})),
            (b, _submit(b, [short], {"prosody": {}})),
        ]
        for client, job_id in submitted:
            assert wait_for_status(client, job_id, FINAL, timeout=90)["status"] == "completed"
            _settled(service, job_id)

        everyone = admin.get("/v1/usage", params={"group_by": "tenant,metadata.customer"})
        assert everyone.status_code == 200, everyone.text
        body = everyone.json()
        assert body["group_by"] == ["tenant", "metadata.customer"] and body["price_per_minute"] == 0.6
        assert "next_offset" not in body
        # 10 s per short WAV (Hume's minimum), 25 s per long one; 0.6 per minute is 0.01 per second.
        assert [(i["group"], i["metered_seconds"], i["requests"], i["cost"]) for i in body["items"]] == [
            ({"tenant": "tenant-a", "metadata.customer": "acme"}, 20.0, 2, 0.2),
            ({"tenant": "tenant-a", "metadata.customer": "globex"}, 25.0, 1, 0.25),
            ({"tenant": "tenant-b", "metadata.customer": "acme"}, 25.0, 1, 0.25),
            ({"tenant": "tenant-b", "metadata.customer": None}, 10.0, 1, 0.1),
        ]
        assert all(i["billed_by_hume"] == i["requests"] for i in body["items"])

        own = a.get("/v1/usage", params={"group_by": "day,tenant"}).json()
        [today] = own["items"]
        assert today["group"]["tenant"] == "tenant-a" and today["metered_seconds"] == 45.0
        assert today["cost"] == pytest.approx(0.45)

        paged = admin.get("/v1/usage", params={"group_by": "tenant,metadata.customer", "limit": 3}).json()
        assert len(paged["items"]) == 3 and paged["next_offset"] == 3
        rest = admin.get("/v1/usage", params={"group_by": "tenant,metadata.customer", "offset": 3}).json()
        assert [i["group"] for i in rest["items"]] == [{"tenant": "tenant-b", "metadata.customer": None}]

        future = admin.get("/v1/usage", params={"since": "2999-01-01"}).json()
        assert future["items"] == []

        for params, field in (
            ({"group_by": "tenant,colour"}, "group_by"),
            ({"group_by": "day,day"}, "group_by"),
            ({"group_by": "metadata."}, "group_by"),
            ({"since": "yesterday"}, "since"),
            ({"since": "2026-12-05", "until": "2026-12-01"}, "until"),
            ({"limit": "0"}, "limit"),
        ):
            refused = admin.get("/v1/usage", params=params)
            assert refused.status_code == 422, (params, refused.text)
            assert refused.json()["error"]["details"]["field"] == field, refused.text
        assert "colour" in admin.get("/v1/usage", params={"group_by": "tenant,colour"}).json()["error"]["message"]

    # The dashboard's usage page draws the same report: today's bar stacked by tenant (or by customer), each
    # segment titled with its seconds; a tenant's key sees its own tenant only.
    def usage_page(key: str, **params: str) -> httpx.Response:
        with httpx.Client(base_url=service.url, timeout=30) as browser:
            assert browser.post("/dashboard/signin", data={"key": key}).status_code == 303
            return browser.get("/dashboard/usage", params=params)

    today = datetime.now(UTC).date().isoformat()  # the service counts UTC days
    page = usage_page(service.key)
    assert page.status_code == 200, page.text
    assert _segments(page.text) == {"tenant-a": [f"{today}: 45.000 s"], "tenant-b": [f"{today}: 35.000 s"]}
    assert "80.0 s in all, 0.80 at 0.6 per minute" in page.text
    by_customer = usage_page(service.key, metadata_key="customer")
    assert _segments(by_customer.text) == {
        "(none)": [f"{today}: 10.000 s"], "acme": [f"{today}: 45.000 s"], "globex": [f"{today}: 25.000 s"]
    }  # fmt: skip
    assert _segments(usage_page(key_a).text) == {"tenant-a": [f"{today}: 45.000 s"]}
    refused = usage_page(key_a, since="2026-13-01")
    assert refused.status_code == 422 and "since" in refused.text

    unpriced = make_service(**QUICK_READS)
    with unpriced.client() as client:
        body = client.get("/v1/usage", params={"group_by": "tenant"}).json()
    assert "price_per_minute" not in body and all("cost" not in i for i in body["items"])
