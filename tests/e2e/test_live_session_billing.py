"""Live sessions are billed like v1 file jobs, over real sockets: a browser's session (the `websockets` library
plays the browser) relayed by the service (uvicorn) to the emulator's realtime endpoint, a v1 file job beside
it, real Postgres. A session's usage row carries its run id (Hume's session_id) and our estimate, Hume's own
`metered_seconds` replaces it once its run is read, the unowned-runs check counts the run as ours, and
/v1/usage and the Usage page show it as kind `session`. The tenant's daily budget refuses a token, refuses a
socket and ends a session that runs past it. A message over the server's WebSocket limit is refused as it is
read (1009)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
import websockets
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection

from app.emulator.testing import EmulatorServer
from app.sessions import service as relay
from app.store import api_keys
from app.usage import billed_runs
from app.wiring import build_deps
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory, create_key, service_settings
from tests.e2e.test_live_sessions import SECOND, job_of, mint, read_until_closed
from tests.e2e.test_spine import wait_for_status
from tests.emulator.media import pcm_tones
from tests.media_factory import make_wav
from tests.servers import ServiceServer, bind
from tests.v1.media_server import media_server
from tests.v1.test_v1_billed_usage import _segments, _submit, _unowned_check_due
from tests.v1.test_v1_jobs import FINAL, rows


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("session-billing-media")
    make_wav(directory / "short.wav", 4.0)
    with media_server(directory) as url:
        yield url


def usage_of(service: Service, job_id: str) -> list[Any]:
    return rows(
        service.database_url,
        "SELECT run_id, seconds, billed_seconds, billing, state FROM hume_usage WHERE job_id = :id ORDER BY id",
        id=job_id,
    )


def settled(service: Service, job_id: str, timeout: float = 30) -> Any:
    """The job's one usage row once it is not waiting to be read any more."""
    deadline = time.monotonic() + timeout
    while True:
        usage = usage_of(service, job_id)
        if len(usage) == 1 and usage[0].billing != "pending":
            return usage[0]
        assert time.monotonic() < deadline, f"run still to be read: {usage}"
        time.sleep(0.1)


def ended(service: Service, job_id: str, timeout: float = 20) -> dict[str, Any]:
    """The job once it is no longer live."""
    deadline = time.monotonic() + timeout
    while (job := job_of(service, job_id).json())["status"] == "live":
        assert time.monotonic() < deadline, "the session's job was left live"
        time.sleep(0.1)
    assert isinstance(job, dict)
    return job


def spent_today(service: Service, tenant: str = "default") -> float:
    found = rows(service.database_url, "SELECT seconds FROM hume_tenant_day WHERE tenant = :t", t=tenant)
    return float(found[0].seconds) if found else 0.0


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def speak(ws: ClientConnection, seconds: float) -> None:
    """`seconds` of speech at real time (0.25 s frames, as a microphone sends them)."""
    speech = pcm_tones(seconds, [(0.2, seconds - 0.2)])
    started = time.monotonic()
    for offset in range(0, len(speech), SECOND // 4):
        await asyncio.sleep(max(0.0, started + offset / SECOND - time.monotonic()))
        await ws.send(speech[offset : offset + SECOND // 4])


async def measured_session(url: str, seconds: float) -> tuple[str, list[Any]]:
    """A session that sends `seconds` of speech and closes: Hume's session id and what the browser received."""
    async with websockets.connect(url) as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created"
        await speak(ws, seconds)
        await ws.send(json.dumps({"type": "session.close"}))
        received = await read_until_closed(ws)
    return str(created["session_id"]), received


def test_a_session_is_billed_owned_and_reported_like_a_file_job(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str, database_url: str
) -> None:
    """A v1 file job (a 4 s WAV: Hume's 10 s minimum) and a 2 s audio session for the same customer. The
    session's usage row is its run (Hume's session_id) with our estimate (10 s: the minimum of a run that took
    media); Hume's runs API bills it 12.5 s, which replaces the estimate for the job, the tenant's day and
    /v1/usage; the metrics tell the estimate from the billed figure; the unowned-runs check reports neither
    run; /v1/usage and the Usage page show the session as kind `session` of backend v1."""
    # Runs are read 2 s after the session ends: time to have Hume's runs API bill it differently below.
    service = make_service(allow_private_hosts="127.0.0.1", hume_run_read_delay_s=2.0, hume_price_per_minute=0.6)
    with service.client() as client:
        file_job = _submit(client, [f"{media}/media/short.wav"], {"prosody": {}}, metadata={"customer": "acme"})
        assert wait_for_status(client, file_job, FINAL, timeout=60)["status"] == "completed"
    assert settled(service, file_job).billing == "hume"

    estimated_before = metric("hume_estimated_seconds_total", endpoint="audio", mode="realtime")
    billed_before = metric("hume_billed_seconds_total", endpoint="audio", mode="realtime")
    minted = mint(service, metadata={"customer": "acme"})
    session_id, received = asyncio.run(measured_session(minted["urls"]["audio"], 2.0))
    assert received[-1]["type"] == "session.closed"
    assert received[-1]["received"]["audio_duration_ms"] == 2000
    [usage] = usage_of(service, minted["job_id"])
    assert (usage.run_id, usage.state, usage.seconds) == (session_id, "billed", 10.0)
    assert usage.billing == "pending", "the session's run waits to be read like a file request's"

    run = httpx.get(f"{emulator.cloud_url}/v1/expression/run/{session_id}", headers={"X-Hume-Api-Key": EMULATOR_KEY})
    assert run.status_code == 200, run.text
    assert (run.json()["mode"], run.json()["metered_seconds"]) == ("realtime", 10.0)
    billed_otherwise = {**run.json(), "metered_seconds": 12.5}
    emulator.set_faults(path="/v1/expression/run/{run_id}", method="GET", status=200, body=billed_otherwise, times=1)
    read = settled(service, minted["job_id"])
    assert (read.billing, read.seconds, read.billed_seconds) == ("hume", 10.0, 12.5)
    assert metric("hume_estimated_seconds_total", endpoint="audio", mode="realtime") - estimated_before == 10.0
    assert metric("hume_billed_seconds_total", endpoint="audio", mode="realtime") - billed_before == 12.5

    with service.client() as client:
        job = client.get(f"/v1/jobs/{minted['job_id']}").json()
        assert (job["kind"], job["hume_job_id"], job["hume_metered_seconds"]) == ("session", session_id, 12.5)
        by_kind = client.get("/v1/usage", params={"group_by": "kind,backend"}).json()
        by_customer = client.get("/v1/usage", params={"group_by": "metadata.customer"}).json()
    assert spent_today(service) == pytest.approx(22.5)
    assert [(i["group"], i["metered_seconds"], i["estimated_seconds"], i["requests"], i["cost"])
            for i in by_kind["items"]] == [
        ({"kind": "batch", "backend": "v1"}, 10.0, 10.0, 1, 0.1),
        ({"kind": "session", "backend": "v1"}, 12.5, 10.0, 1, 0.125),
    ]  # fmt: skip
    assert [(i["group"], i["metered_seconds"], i["billed_by_hume"]) for i in by_customer["items"]] == [
        ({"metadata.customer": "acme"}, 22.5, 2)
    ]

    # The Usage page, stacked by kind: the file job and the session as two series of today's bar.
    today = datetime.now(UTC).date().isoformat()
    with httpx.Client(base_url=service.url, timeout=30) as browser:
        assert browser.post("/dashboard/signin", data={"key": service.key}).status_code == 303
        page = browser.get("/dashboard/usage", params={"stack": "kind"})
        refused = browser.get("/dashboard/usage", params={"stack": "colour"})
    assert page.status_code == 200, page.text
    assert _segments(page.text) == {"batch": [f"{today}: 10.000 s"], "session": [f"{today}: 12.500 s"]}
    assert refused.status_code == 422 and "stack" in refused.text

    # The unowned-runs check (at most once a period by any process: as if its last run was a period ago) lists both
    # runs and finds each owned: the session's from the moment Hume named it.
    _unowned_check_due(database_url)

    async def check() -> int:
        settings = service_settings(
            database_url, emulator, hume_unowned_runs_grace_s=0, hume_unowned_runs_interval_s=60
        )
        async with build_deps(settings, pool_size=1) as deps:
            return await billed_runs.report_unowned(deps)

    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(check()) == 2
    assert REGISTRY.get_sample_value("hume_unowned_runs") == 0
    assert not [entry for entry in logs if entry["event"] == "hume runs no job owns"]


def test_a_session_that_took_no_media_costs_nothing(make_service: ServiceFactory) -> None:
    """Hume bills a run that took no media 0 s (its 10 s minimum applies to runs that took media): the session's
    reservation is given back, its run still recorded as ours, and nothing waits to be read."""
    service = make_service()

    async def empty() -> str:
        async with websockets.connect(mint(service)["urls"]["audio"]) as ws:
            created = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "session.close"}))
            await read_until_closed(ws)
            return str(created["session_id"])

    session_id = asyncio.run(empty())
    [job] = rows(service.database_url, "SELECT id FROM job WHERE kind = 'session'")
    [usage] = usage_of(service, str(job.id))
    assert (usage.run_id, usage.seconds, usage.billing) == (session_id, 0.0, "estimate")
    assert spent_today(service) == 0.0


@pytest.fixture
def tight_budget(make_service: ServiceFactory) -> Service:
    """A day of 12 Hume-metered seconds per tenant: a session's 10 s minimum and 2 s more."""
    return make_service(hume_tenant_daily_seconds=12, session_flush_ms=100)


def test_the_daily_budget_ends_a_session_and_refuses_the_next(tight_budget: Service, emulator: EmulatorServer) -> None:
    """A session runs past its tenant's day (12 s): the frame that would pass it is not forwarded, the browser
    hears why (an error, then Hume's session.closed, then close 4429), what Hume measured is stored and the job
    fails hume_budget_exhausted. Hume took exactly the budget. A token minted before then opens nothing (4429,
    no Hume handshake); a new one is refused with 429 naming the budget; another tenant is unaffected."""
    service = tight_budget
    minted, spare = mint(service), mint(service)
    speech = pcm_tones(14.0, [(0.2, 13.8)])

    async def run_past_the_budget() -> list[Any]:
        async with websockets.connect(minted["urls"]["audio"]) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            started = time.monotonic()
            for offset in range(0, len(speech), SECOND // 4):
                await asyncio.sleep(max(0.0, started + offset / SECOND - time.monotonic()))
                try:
                    await ws.send(speech[offset : offset + SECOND // 4])
                except websockets.ConnectionClosed:
                    break
            received = await read_until_closed(ws)
            assert (ws.close_code, ws.close_reason) == (relay.CLOSE_BUDGET_SPENT, close_reason())
            return received

    def close_reason() -> str:
        today = datetime.now(UTC).date()
        return f"Hume budget for {today.isoformat()} spent; resets {(today + timedelta(days=1)).isoformat()}T00:00:00Z"

    received = asyncio.run(run_past_the_budget())
    [refusal] = [m for m in received if m["type"] == "error"]
    assert (refusal["code"], refusal["retryable"], refusal["source"]) == ("hume_budget_exhausted", False, "relay")
    assert "has spent 12.0 of its 12 Hume-metered seconds" in refusal["message"]
    closed = received[-1]
    assert closed["type"] == "session.closed" and closed["received"]["audio_duration_ms"] == 12_000
    job = job_of(service, minted["job_id"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "hume_budget_exhausted"
    measured = [m for m in received if m["type"] == "measurement.result"]
    assert job["num_predictions"] == len(measured) >= 3, "what Hume measured before the end is stored"
    assert spent_today(service) == pytest.approx(12.0)

    handshakes = emulator.calls().get("GET /v1/expression/audio/realtime", 0)

    async def open_spare() -> tuple[list[Any], int | None, str | None]:
        async with websockets.connect(spare["urls"]["audio"]) as ws:
            received = await read_until_closed(ws)
            return received, ws.close_code, ws.close_reason

    said, code, reason = asyncio.run(open_spare())
    assert (code, reason) == (relay.CLOSE_BUDGET_SPENT, close_reason())
    assert [m["code"] for m in said] == ["hume_budget_exhausted"]
    assert "a live session needs 10.0 s" in said[0]["message"]
    assert emulator.calls().get("GET /v1/expression/audio/realtime", 0) == handshakes, "Hume was not asked"
    job = job_of(service, spare["job_id"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "hume_budget_exhausted"

    with service.client() as client:
        refused = client.post("/v1/session-tokens", json={})
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "hume_budget_exhausted" and "resets at" in error["message"]
    assert (error["details"]["limit_seconds"], error["details"]["spent_seconds"]) == (12, 12.0)
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
    other = create_key(service.database_url, ["session"], "tenant-b", "tenant-b")
    assert mint(service, other)["token"], "another tenant's budget is its own"


def test_a_message_over_the_server_limit_is_refused_as_it_is_read(make_service: ServiceFactory) -> None:
    """The server reads a WebSocket message up to Hume's largest (2,000,000 bytes, video) and 64 KiB more: a
    message a little over Hume's limit gets the relay's message_too_large (1008), a larger one is refused by
    the protocol layer before it is read whole (1009). Either way Hume never gets it and the job fails."""
    service = make_service()
    assert relay.BROWSER_MESSAGE_MAX_BYTES == 2_000_000 + 65_536

    async def send(size: int) -> tuple[str, list[Any], int | None, str]:
        minted = mint(service)
        async with websockets.connect(minted["urls"]["video"]) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(b"\xff" * size)
            received = await read_until_closed(ws)
            return minted["job_id"], received, ws.close_code, ws.close_reason or ""

    job_id, received, code, reason = asyncio.run(send(2_000_001))
    assert (code, reason) == (1008, "message_too_large")
    assert received[0]["code"] == "message_too_large" and received[-1]["received"] == {"frames": 0}
    assert job_of(service, job_id).json()["error"]["code"] == "message_too_large"

    job_id, received, code, reason = asyncio.run(send(relay.BROWSER_MESSAGE_MAX_BYTES + 1))
    assert code == 1009 and received == [], reason
    # The protocol layer closed the browser at once; the relay then closes Hume's session and ends the job.
    job = ended(service, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "message_too_large"
    assert str(relay.BROWSER_MESSAGE_MAX_BYTES) in job["error"]["message"]


@pytest.fixture
def small_buffers(database_url: str, emulator: EmulatorServer) -> Iterator[Service]:
    """The service on a listening socket whose connections have a 16 KiB kernel send buffer (accepted sockets
    inherit it; Linux's autotuning would otherwise grow it to 4 MiB, which a stalled browser fills as surely,
    only later): what a browser does not read then reaches the relay's own bound within a second."""
    sock = bind()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    server = ServiceServer(service_settings(database_url, emulator, session_flush_ms=100), sock=sock).__enter__()
    try:
        yield Service(server=server, key=create_key(database_url, list(api_keys.SCOPES)), database_url=database_url)
    finally:
        server.__exit__(None, None, None)


def test_a_browser_that_stops_reading_ends_its_session_keeping_what_was_stored(
    small_buffers: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser speaks, then stops reading while it keeps sending (frames the relay answers with an error
    each, as it would pass on Hume's replies). The relay sends one message at a time and uvicorn buffers at
    most 64 KiB before a send waits, so nothing piles up in the service: after BROWSER_SEND_TIMEOUT_S (1 s
    here) without room the session ends. Hume's session is closed in order, the job fails browser_not_reading
    with the measurement stored before kept, and when the browser reads again it gets what the buffers held,
    then close 1008 browser_not_reading."""
    monkeypatch.setattr(relay, "BROWSER_SEND_TIMEOUT_S", 1.0)
    service = small_buffers
    minted = mint(service)
    url = minted["urls"]["audio"]

    async def flood(ws: ClientConnection) -> int:
        sent = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                # Odd-length frames: the relay answers each with invalid_audio_frame and Hume never sees them.
                # A pause every 100 lets this client's own connection run (it stops reading once 4 wait).
                for _ in range(100):
                    await ws.send(b"\x00" * 3)
                sent += 100
                await asyncio.sleep(0.005)
        return sent

    async def scenario() -> tuple[dict[str, Any], list[Any], int | None, str | None, int]:
        # A small receive buffer too (setting it turns autotuning off): little is held on the browser's side.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect(("127.0.0.1", service.server.port))
        async with websockets.connect(url, sock=sock, max_queue=4, compression=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await speak(ws, 3.5)  # one measurement at 3 s of speech (HUME-V1-FACTS §6)
            deadline = time.monotonic() + 15
            while (await asyncio.to_thread(job_of, service, minted["job_id"])).json()["num_predictions"] == 0:
                assert time.monotonic() < deadline, "the first measurement was not stored while the browser read"
                await asyncio.sleep(0.1)
            # From here the browser reads nothing.
            flooding = asyncio.create_task(flood(ws))
            job = await asyncio.to_thread(ended, service, minted["job_id"], 30)
            received = await read_until_closed(ws)
            sent = await flooding
            return job, received, ws.close_code, ws.close_reason, sent

    job, received, code, reason, sent = asyncio.run(scenario())
    assert (job["status"], job["error"]["code"]) == ("failed", "browser_not_reading")
    assert job["error"]["message"] == "the browser read nothing for 1 s"
    assert job["num_predictions"] >= 1
    with service.client() as client:
        stored = client.get(f"/v1/jobs/{minted['job_id']}/predictions", params={"limit": 100}).json()["items"]
    assert len(stored) == job["num_predictions"], "what was stored before the browser stopped is kept"
    assert (code, reason) == (1008, "browser_not_reading")
    # What reached the browser is what the buffers held when the relay stopped: far from one error per frame.
    errors = [m for m in received if isinstance(m, dict) and m.get("type") == "error"]
    assert 0 < len(errors) < sent / 2, (len(errors), sent)
