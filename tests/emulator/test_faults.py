"""Faults on demand, auth, and the control endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from hume import AsyncHumeClient, HumeClient
from hume.core.api_error import ApiError

from app.emulator.testing import EmulatorServer

from .conftest import API_KEY, Receiver
from .helpers import wait_done


def test_429_with_retry_after_is_honoured_by_the_sdk(emu: EmulatorServer, client: HumeClient) -> None:
    """A 429 with Retry-After: 1 makes the SDK wait about a second and retry successfully."""
    emu.set_faults(path="/v0/batch/jobs", method="POST", status=429, times=1, retry_after=1)
    started = time.monotonic()
    job_id = client.expression_measurement.batch.start_inference_job(urls=["https://example.com/a.jpg"])
    assert job_id
    assert 0.9 <= time.monotonic() - started < 3
    assert emu.calls()["POST /v0/batch/jobs"] == 2


async def test_5xx_then_success_with_async_client(emu: EmulatorServer, async_client: AsyncHumeClient) -> None:
    """A 503 on a path template is retried by the async SDK; with max_retries=0 it surfaces as ApiError."""
    emu.set_faults(path="/v0/batch/jobs/{id}", status=503, times=1, retry_after=1)
    batch = async_client.expression_measurement.batch
    job_id = await batch.start_inference_job(urls=["https://example.com/a.jpg"])
    job = await batch.get_job_details(job_id)
    assert job.job_id == job_id
    emu.set_faults(path="/v0/batch/jobs/{id}", status=500, times=1)
    with pytest.raises(ApiError) as err:
        await batch.get_job_details(job_id, request_options={"max_retries": 0})
    assert err.value.status_code == 500
    assert emu.calls()["GET /v0/batch/jobs/{id}"] == 3


@pytest.mark.parametrize("status", [404, 410])
def test_sunset_mode_answers_batch_paths_with_404_or_410(emu: EmulatorServer, client: HumeClient, status: int) -> None:
    """Sunset mode answers every batch path as Hume does since the API's retirement; TTS is unaffected."""
    emu.set_faults(sunset=True, status=status)
    with pytest.raises(ApiError) as err:
        client.expression_measurement.batch.start_inference_job(urls=["https://example.com/a.jpg"])
    assert err.value.status_code == status
    with pytest.raises(ApiError) as err:
        client.expression_measurement.batch.list_jobs()
    assert err.value.status_code == status
    emu.set_faults(sunset=False)
    assert client.expression_measurement.batch.list_jobs() == []


def test_slow_responses_trip_client_timeouts(emu: EmulatorServer, client: HumeClient) -> None:
    """delay_s stalls responses, so a client timeout fires (the SDK does not retry timeouts)."""
    emu.set_faults(delay_s=0.5, times=1)
    with pytest.raises(httpx.TimeoutException):
        client.expression_measurement.batch.list_jobs(request_options={"timeout_in_seconds": 0.1})
    assert client.expression_measurement.batch.list_jobs() == []


def test_fail_jobs_and_slow_marker(emu: EmulatorServer, client: HumeClient) -> None:
    """Control `fail_jobs` fails the next job; #slow=N keeps a job in progress N seconds longer."""
    batch = client.expression_measurement.batch
    emu.set_faults(fail_jobs=1)
    failed = batch.start_inference_job(urls=["https://example.com/a.jpg"])
    fine = batch.start_inference_job(urls=["https://example.com/a.jpg"])
    assert wait_done(client, failed).state.status == "FAILED"
    assert wait_done(client, fine).state.status == "COMPLETED"
    slow = batch.start_inference_job(urls=["https://example.com/a.jpg#slow=0.5"])
    time.sleep(0.3)
    assert batch.get_job_details(slow).state.status == "IN_PROGRESS"
    assert wait_done(client, slow).state.status == "COMPLETED"


def test_api_key_is_required_and_checked(make_emulator: Callable[..., EmulatorServer]) -> None:
    """Without or with a wrong X-Hume-Api-Key Hume answers 401; bearer tokens do not work for batch."""
    emu = make_emulator(api_key="right-key")
    with pytest.raises(ApiError) as err:
        HumeClient(api_key="wrong-key", base_url=emu.base_url).expression_measurement.batch.list_jobs()
    assert err.value.status_code == 401
    resp = httpx.get(f"{emu.base_url}/v0/batch/jobs")
    assert resp.status_code == 401 and "fault" in resp.json()
    resp = httpx.get(f"{emu.base_url}/v0/batch/jobs", headers={"Authorization": "Bearer anything"})
    assert resp.status_code == 401
    assert HumeClient(api_key="right-key", base_url=emu.base_url).expression_measurement.batch.list_jobs() == []


def test_any_non_empty_key_is_accepted_by_default(emu: EmulatorServer) -> None:
    """With no --api-key configured any non-empty key works, an empty one does not."""
    ok = httpx.get(f"{emu.base_url}/v0/batch/jobs", headers={"X-Hume-Api-Key": "whatever"})
    empty = httpx.get(f"{emu.base_url}/v0/batch/jobs", headers={"X-Hume-Api-Key": ""})
    assert (ok.status_code, empty.status_code) == (200, 401)


def test_calls_reset_and_fault_listing(emu: EmulatorServer, client: HumeClient) -> None:
    """The calls endpoint counts requests per method and path template; reset clears jobs, calls and faults."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job(urls=["https://example.com/a.jpg"])
    wait_done(client, job_id)
    batch.get_job_predictions(job_id)
    calls = emu.calls()
    assert calls["POST /v0/batch/jobs"] == 1
    assert calls["GET /v0/batch/jobs/{id}/predictions"] == 1
    assert calls["GET /v0/batch/jobs/{id}"] >= 1
    faults = emu.set_faults(path="/v0/tts", status=500)
    assert faults["rules"][0]["path"] == "/v0/tts"
    bad = httpx.post(f"{emu.base_url}/_emulator/faults", json={"status": "x"})
    assert bad.status_code == 400
    emu.reset()
    assert emu.calls() == {}
    assert batch.list_jobs() == []
    assert httpx.get(f"{emu.base_url}/_emulator/faults").json()["rules"] == []


def test_callback_faults_from_the_control_endpoint(emu: EmulatorServer, receiver: Receiver) -> None:
    """Control `drop_callbacks`/`duplicate_callbacks` affect the next jobs, like the URL markers."""
    batch = HumeClient(api_key=API_KEY, base_url=emu.base_url).expression_measurement.batch
    emu.set_faults(drop_callbacks=1)
    batch.start_inference_job(urls=["https://example.com/a.jpg"], callback_url=receiver.url)
    emu.set_faults(duplicate_callbacks=1)
    twice = batch.start_inference_job(urls=["https://example.com/b.jpg"], callback_url=receiver.url)
    got = receiver.wait_for(2)
    assert [r.json()["job_id"] for r in got] == [twice, twice]
    assert receiver.wait_for(3, timeout=0.2) == got


def test_realistic_timing_is_30_to_50_percent_of_media_length() -> None:
    """--realistic: processing takes 30-50 % of the media duration (plus start-up); fast mode is short."""
    from app.emulator.batch_request import normalize_request
    from app.emulator.jobs import Job
    from app.emulator.lifecycle import simulated_durations
    from app.emulator.media import url_source

    request = normalize_request({"urls": ["https://example.com/v.mp4#duration=600"]}, [])
    for _ in range(20):
        job = Job.new(request, [url_source(u, 8, 40) for u in request["urls"]])
        queued, processing = simulated_durations(job, realistic=True)
        assert 0.3 * 600 <= processing - 1.5 <= 0.5 * 600 and queued <= 4
        assert sum(simulated_durations(job, realistic=False)) < 10


async def test_emulator_server_as_async_context_manager() -> None:
    """EmulatorServer also works with `async with` and leaves no thread behind."""
    import threading

    async with EmulatorServer() as server:
        client = AsyncHumeClient(api_key="k", base_url=server.base_url)
        assert await client.expression_measurement.batch.list_jobs() == []
        name = f"hume-emulator-{server.port}"
        assert any(t.name == name for t in threading.enumerate())
    assert not any(t.name == name for t in threading.enumerate())
