"""Batch callbacks: body, retries with backoff, and the drop/duplicate markers."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from hume import HumeClient
from hume.expression_measurement.batch import Face, InferenceSourcePredictResult, Models

from app.emulator.testing import EmulatorServer

from .conftest import API_KEY, Receiver
from .helpers import wait_done


def _client(emu: EmulatorServer) -> HumeClient:
    return HumeClient(api_key=API_KEY, base_url=emu.base_url)


def test_completed_callback_carries_the_predictions(emu: EmulatorServer, receiver: Receiver) -> None:
    """When a job completes, callback_url gets {job_id, status: COMPLETED, predictions}, the
    predictions equal to GET /predictions."""
    client = _client(emu)
    job_id = client.expression_measurement.batch.start_inference_job(
        urls=["https://example.com/a.jpg"], models=Models(face=Face()), callback_url=receiver.url
    )
    got = receiver.wait_for(1)
    assert len(got) == 1
    body = got[0].json()
    assert body["job_id"] == job_id and body["status"] == "COMPLETED"
    assert got[0].headers["content-type"] == "application/json"
    served = httpx.get(f"{emu.base_url}/v0/batch/jobs/{job_id}/predictions", headers={"X-Hume-Api-Key": API_KEY}).json()
    assert body["predictions"] == served
    InferenceSourcePredictResult.model_validate(body["predictions"][0])


def test_failed_job_callback_carries_the_message(emu: EmulatorServer, receiver: Receiver) -> None:
    """A #fail job ends FAILED with a message, and its callback says so."""
    client = _client(emu)
    job_id = client.expression_measurement.batch.start_inference_job(
        urls=["https://example.com/a.mp4#fail"], callback_url=receiver.url
    )
    job = wait_done(client, job_id)
    assert job.state.status == "FAILED" and job.state.message
    body = receiver.wait_for(1)[0].json()
    assert body == {"job_id": job_id, "status": "FAILED", "message": job.state.message}


def test_callback_is_retried_after_5xx_with_backoff(
    make_emulator: Callable[..., EmulatorServer], receiver: Receiver
) -> None:
    """Non-2xx answers are retried with doubling backoff until one succeeds."""
    emu = make_emulator(callback_backoff_s=0.05)
    receiver.script = [500, 503]
    job_id = _client(emu).expression_measurement.batch.start_inference_job(
        urls=["https://example.com/a.png"], callback_url=receiver.url
    )
    got = receiver.wait_for(3)
    assert len(got) == 3 and all(r.json()["job_id"] == job_id for r in got)
    # The emulator records an attempt once it has read the answer, which can be after the receiver has it.
    deadline = time.monotonic() + 5
    while len(attempts := emu.deliveries("batch_callback")) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    # Each wait at least its backoff (50 ms, then doubled): a slow answer lengthens a gap, never shortens it,
    # so comparing the gaps with each other failed once on a busy machine.
    first_gap, second_gap = (attempts[i + 1]["at_ms"] - attempts[i]["at_ms"] for i in (0, 1))
    assert first_gap >= 45 and second_gap >= 95, (first_gap, second_gap)


def test_callback_gives_up_after_max_attempts_and_retries_timeouts(
    make_emulator: Callable[..., EmulatorServer], receiver: Receiver
) -> None:
    """A receiver that times out or keeps failing gets exactly callback_max_attempts tries."""
    emu = make_emulator(callback_max_attempts=3, callback_timeout_s=0.2, callback_backoff_s=0.01)
    receiver.stalls = [0.5]
    receiver.script = [200, 500, 500]  # the first (stalled) answer arrives too late to count
    _client(emu).expression_measurement.batch.start_inference_job(
        urls=["https://example.com/a.png"], callback_url=receiver.url
    )
    receiver.wait_for(3)
    attempts = emu.deliveries("batch_callback")
    assert len(attempts) == 3
    assert "Timeout" in str(attempts[0].get("error")) and [a.get("status_code") for a in attempts[1:]] == [
        500,
        500,
    ]
    assert not any(a["ok"] for a in attempts)


def test_drop_and_duplicate_callback_markers(emu: EmulatorServer, receiver: Receiver) -> None:
    """#drop_callback sends nothing; #duplicate_callback sends the same callback twice."""
    batch = _client(emu).expression_measurement.batch
    dropped = batch.start_inference_job(urls=["https://example.com/a.png#drop_callback"], callback_url=receiver.url)
    duplicated = batch.start_inference_job(
        urls=["https://example.com/b.png#duplicate_callback"], callback_url=receiver.url
    )
    got = receiver.wait_for(2)
    assert len(got) == 2 and got[0].body == got[1].body
    assert got[0].json()["job_id"] == duplicated
    assert wait_done(_client(emu), dropped).state.status == "COMPLETED"
    assert receiver.wait_for(3, timeout=0.3) == got
    assert any(d.get("dropped") and d["ref"] == dropped for d in emu.deliveries())
