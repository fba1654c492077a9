"""Batch callbacks under attack and under faults, over real sockets: the service, the emulator, Postgres.

Every genuine event is processed exactly once and no forged one is: forged callbacks leave zero rows,
duplicates and racing deliveries store predictions once, late events never move a job back, a dropped
callback is recovered by the reconciler, a dead event is visible and can be replayed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory, hume_environment
from tests.reliability.helpers import (
    callback_url_of,
    completed_body,
    expected_rows,
    hume_predictions,
    inbox_count,
    prediction_count,
    rows,
    scalar,
    token_of,
    wait_final,
    wait_until,
)

# Fast retries so failures and dead ends show up within a test's time.
# The SDK's own quick retries are off: each Hume call failure reaches the worker's retry strategy.
FAST = {"worker_retry_base_s": 0.1, "worker_retry_cap_s": 0.5, "hume_max_retries": 0}


def submit(client: httpx.Client, url: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs", json={"urls": [url], "models": {"face": {}, "prosody": {}}, **extra})
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_queued(client: httpx.Client, job_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["hume_job_id"] and job["status"] != "pending" else None

    result: dict[str, Any] = wait_until(check, 20, "the job to reach Hume")
    return result


def silent_job(service: Service, emulator: EmulatorServer, marker: str = "") -> tuple[dict[str, Any], str]:
    """A job Hume runs but never calls back about: (job, its genuine callback URL)."""
    with service.client() as client:
        job = submit(client, f"https://example.com/{uuid.uuid4().hex}.mp4#duration=6&drop_callback{marker}")
        job = wait_queued(client, job["id"])
    return job, callback_url_of(emulator, job["hume_job_id"])


def post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json", **headers}, timeout=30)


def test_forged_callbacks_are_refused_and_store_nothing(make_service: ServiceFactory, emulator: EmulatorServer) -> None:
    """Missing, wrong or borrowed tokens, unknown jobs, another Hume job's body, junk and a non-final status
    all answer 4xx with a JSON error, store zero events and zero predictions; then the
    genuine callback still completes the job."""
    service = make_service(max_webhook_body_bytes=4 << 20)
    job, genuine = silent_job(service, emulator)
    other, other_url = silent_job(service, emulator)
    endpoint = f"{service.url}/v1/webhooks/hume/batch"
    hume_id = job["hume_job_id"]
    document = hume_predictions(emulator, EMULATOR_KEY, hume_id)
    good = completed_body(hume_id, document)
    token = token_of(genuine)
    cases: list[tuple[str, str, bytes, int]] = [
        ("no token", f"{endpoint}?job_id={job['id']}", good, 401),
        ("no job id", f"{endpoint}?token={token}", good, 401),
        ("wrong token", f"{endpoint}?job_id={job['id']}&token={'x' * 43}", good, 401),
        ("another job's token", f"{endpoint}?job_id={job['id']}&token={token_of(other_url)}", good, 401),
        ("unknown job", f"{endpoint}?job_id={uuid.uuid4()}&token={token}", good, 404),
        ("malformed job id", f"{endpoint}?job_id=nope&token={token}", good, 404),
        ("body names another Hume job", genuine, completed_body(other["hume_job_id"], document), 401),
        ("not JSON", genuine, b"{not json", 400),
        ("not UTF-8", genuine, b'{"job_id": "\xff\xfe"}', 400),
        ("JSON but no job_id", genuine, b'{"status": "COMPLETED"}', 400),
        ("not a final status", genuine, b'{"job_id": "' + hume_id.encode() + b'", "status": "IN_PROGRESS"}', 400),
    ]  # a genuine callback over the cap is accepted and fetched from the API: test_hardening_webhooks
    for name, url, body, status in cases:
        response = post(url, body)
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.json()["error"]["code"], name
    assert inbox_count(service.database_url) == 0
    assert prediction_count(service.database_url, job["id"]) == 0

    accepted = post(genuine, good)
    assert accepted.status_code == 202, accepted.text
    with service.client() as client:
        done = wait_final(client, job["id"])
    assert done["status"] == "completed"
    assert prediction_count(service.database_url, job["id"]) == expected_rows(document) == done["num_predictions"]


def test_same_callback_five_times_at_once_stores_once(make_service: ServiceFactory, emulator: EmulatorServer) -> None:
    """Five identical callbacks racing: one is accepted (202), four are duplicates (200), and the job's
    predictions are stored exactly once."""
    service = make_service()
    job, genuine = silent_job(service, emulator)
    document = hume_predictions(emulator, EMULATOR_KEY, job["hume_job_id"])
    body = completed_body(job["hume_job_id"], document)
    with ThreadPoolExecutor(5) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: post(genuine, body), range(5)))
    assert statuses == [200, 200, 200, 200, 202]
    with service.client() as client:
        done = wait_final(client, job["id"])
    assert done["status"] == "completed"
    assert inbox_count(service.database_url) == 1
    assert prediction_count(service.database_url, job["id"]) == expected_rows(document)
    assert int(scalar(service.database_url, "SELECT count(*) FROM source WHERE job_id = %s", job["id"])) == 1


def test_late_and_repeated_callbacks_never_move_a_job_back(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """After a job completed, Hume's duplicate callback answers 200 and a stale FAILED callback is stored
    for audit but changes nothing: the job stays completed with the same rows."""
    service = make_service()
    with service.client() as client:
        job = submit(client, f"https://example.com/{uuid.uuid4().hex}.mp4#duration=6&duplicate_callback")
        done = wait_final(client, job["id"])
        assert done["status"] == "completed"
        genuine = callback_url_of(emulator, done["hume_job_id"])
        stored = prediction_count(service.database_url, job["id"])
        assert stored == done["num_predictions"] > 0
        document = hume_predictions(emulator, EMULATOR_KEY, done["hume_job_id"])
        assert post(genuine, completed_body(done["hume_job_id"], document)).status_code == 200
        stale = b'{"job_id": "%s", "status": "FAILED", "message": "late"}' % done["hume_job_id"].encode()
        failed = post(genuine, stale)
        assert failed.status_code == 202
        wait_until(
            lambda: (
                scalar(service.database_url, "SELECT state FROM inbox_event WHERE event_type = 'FAILED'") == "ignored"
            ),
            20,
            "the stale event to be settled",
        )
        after = client.get(f"/v1/jobs/{job['id']}").json()
    assert after["status"] == "completed" and after["error"] is None
    assert prediction_count(service.database_url, job["id"]) == stored
    deliveries = [d for d in emulator.deliveries("batch_callback") if d["ref"] == done["hume_job_id"]]
    assert sorted(d["status_code"] for d in deliveries) == [200, 202]


def test_dropped_callback_is_recovered_by_the_reconciler(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """Hume never calls back: past its deadline the job is polled and ingested through the same inbox path."""
    service = make_service(reconcile_after_s=1, reconcile_interval_s=1)
    with service.client() as client:
        job = submit(client, f"https://example.com/{uuid.uuid4().hex}.mp4#duration=6&drop_callback")
        done = wait_final(client, job["id"], timeout=30)
    assert done["status"] == "completed"
    document = hume_predictions(emulator, EMULATOR_KEY, done["hume_job_id"])
    assert prediction_count(service.database_url, job["id"]) == expected_rows(document)
    assert emulator.deliveries("batch_callback")[0]["dropped"] is True
    events = rows(service.database_url, "SELECT provider, state FROM inbox_event WHERE job_id = %s", job["id"])
    assert events == [("poll", "done")]


def test_failed_processing_goes_dead_is_listed_and_replays(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """While Hume's API keeps failing, the event is retried with backoff, then marked dead and listed at
    /v1/admin/events?state=dead; a replay after Hume recovers completes the job."""
    service = make_service(worker_max_attempts=3, **FAST)
    job, genuine = silent_job(service, emulator)
    emulator.set_faults(path="/v0/batch/jobs/{id}", status=503)
    document = hume_predictions(emulator, EMULATOR_KEY, job["hume_job_id"])
    assert post(genuine, completed_body(job["hume_job_id"], document)).status_code == 202
    with service.client() as client:
        dead = wait_until(
            lambda: client.get("/v1/admin/events", params={"state": "dead"}).json()["items"], 30, "a dead event"
        )
        assert len(dead) == 1
        assert dead[0]["job_id"] == job["id"] and dead[0]["attempts"] == 3
        assert "503" in dead[0]["last_error"]
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
        read_only = service.client(key=_key(service, ["read"]))
        assert read_only.get("/v1/admin/events").status_code == 403
        emulator.set_faults(clear=True)
        replayed = client.post(f"/v1/admin/events/{dead[0]['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        done = wait_final(client, job["id"])
        assert done["status"] == "completed"
        assert client.post(f"/v1/admin/events/{dead[0]['id']}/replay").status_code == 409
        assert client.post("/v1/admin/events/999999/replay").status_code == 404
        assert client.get("/v1/admin/events", params={"state": "dead"}).json()["items"] == []
    assert prediction_count(service.database_url, job["id"]) == expected_rows(document)


def test_replay_command_requeues_a_dead_event(make_service: ServiceFactory, emulator: EmulatorServer) -> None:
    """`python -m app replay EVENT_ID` puts a dead event back in the queue; the running worker completes
    the job. An unknown id exits 1 with a message."""
    service = make_service(worker_max_attempts=1, **FAST)
    job, genuine = silent_job(service, emulator)
    emulator.set_faults(path="/v0/batch/jobs/{id}", status=503)
    document = hume_predictions(emulator, EMULATOR_KEY, job["hume_job_id"])
    event_id = post(genuine, completed_body(job["hume_job_id"], document)).json()["event_id"]
    wait_until(
        lambda: scalar(service.database_url, "SELECT state FROM inbox_event WHERE id = %s", event_id) == "dead",
        20,
        "the event to die",
    )
    emulator.set_faults(clear=True)
    env = {**os.environ, "DATABASE_URL": service.database_url, **hume_environment(emulator),
           "LOG_LEVEL": "WARNING"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "app", "replay", str(event_id)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    with service.client() as client:
        assert wait_final(client, job["id"])["status"] == "completed"
    missing = subprocess.run(
        [sys.executable, "-m", "app", "replay", "987654"], env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "no event 987654" in missing.stderr


@pytest.mark.parametrize("status", [429, 503])
def test_submit_retries_transient_hume_errors_honouring_retry_after(
    make_service: ServiceFactory, emulator: EmulatorServer, status: int
) -> None:
    """Hume answering 429/503 (with Retry-After) to the submission: the job stays pending, the worker
    retries (no sooner than Retry-After) and the job completes; one Hume job is created."""
    service = make_service(**{**FAST, "worker_retry_cap_s": 5.0})
    emulator.set_faults(path="/v0/batch/jobs", method="POST", status=status, times=2, retry_after=1)
    with service.client() as client:
        started = time.monotonic()
        job = submit(client, f"https://example.com/{uuid.uuid4().hex}.mp4#duration=6")
        wait_queued(client, job["id"])
        waited = time.monotonic() - started
        done = wait_final(client, job["id"], timeout=40)
    assert done["status"] == "completed"
    # Our own backoff alone (0.1, 0.2 s) would be done in 0.3 s; two Retry-After: 1 take 2 s.
    assert waited >= 1.8, waited
    assert emulator.calls()["POST /v0/batch/jobs"] == 3
    assert len(httpx.get(f"{emulator.base_url}/_emulator/jobs", timeout=10).json()["jobs"]) == 1


def test_submit_refused_by_hume_is_rejected_with_its_message(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """A 4xx from Hume is not retried: the job ends `rejected` carrying Hume's own message."""
    service = make_service(**FAST)
    emulator.set_faults(
        path="/v0/batch/jobs", method="POST", status=400, times=1, body={"message": "URL could not be fetched"}
    )
    with service.client() as client:
        job = submit(client, f"https://example.com/{uuid.uuid4().hex}.mp4")
        done = wait_final(client, job["id"])
    assert done["status"] == "rejected"
    assert done["error"]["code"] == "hume_rejected"
    assert "URL could not be fetched" in done["error"]["message"]
    assert emulator.calls()["POST /v0/batch/jobs"] == 1


def _key(service: Service, scopes: list[str]) -> str:
    from tests.conftest import create_key

    return create_key(service.database_url, scopes)


@pytest.mark.parametrize("status", [404, 410])
def test_submit_to_a_sunset_batch_api_is_rejected_naming_the_sunset(
    make_service: ServiceFactory, emulator: EmulatorServer, status: int
) -> None:
    """Hume's batch API answering 404 or 410 to a submission: the job is rejected, not retried, with an
    error that names the 2026-06-15 shutdown."""
    service = make_service(**FAST)
    emulator.set_faults(sunset=True, status=status)
    with service.client() as client:
        done = wait_final(client, submit(client, f"https://example.com/{uuid.uuid4().hex}.mp4")["id"])
    assert done["status"] == "rejected"
    assert done["error"]["code"] == "hume_sunset"
    assert "2026-06-15" in done["error"]["message"]
    assert emulator.calls()["POST /v0/batch/jobs"] == 1


@pytest.mark.parametrize("status", [404, 410])
def test_sunset_while_a_job_waits_fails_it_naming_the_sunset(
    make_service: ServiceFactory, emulator: EmulatorServer, status: int
) -> None:
    """The batch API goes away (404/410) while a submitted job still waits for its callback: the
    reconciler's poll ends the job `failed` with an error naming the sunset instead of polling forever."""
    service = make_service(reconcile_after_s=2, reconcile_interval_s=1, **FAST)
    job, _ = silent_job(service, emulator)
    emulator.set_faults(sunset=True, status=status)
    with service.client() as client:
        done = wait_final(client, job["id"], timeout=30)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "hume_sunset"
    assert "2026-06-15" in done["error"]["message"] and str(status) in done["error"]["message"]
    assert prediction_count(service.database_url, job["id"]) == 0


def test_racing_submissions_with_one_idempotency_key_make_one_job(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """An upstream retrying eagerly: eight identical submissions with one Idempotency-Key at once give one
    job (one 202, the rest 200 with the same id) and one Hume job."""
    service = make_service()
    url = f"https://example.com/{uuid.uuid4().hex}.mp4#duration=4"

    def send(_: int) -> httpx.Response:
        with service.client() as client:
            return client.post("/v1/jobs", json={"urls": [url]}, headers={"Idempotency-Key": "upstream-7"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["id"] for r in responses}) == 1
    with service.client() as client:
        assert wait_final(client, responses[0].json()["id"])["status"] == "completed"
    assert emulator.calls()["POST /v0/batch/jobs"] == 1


def test_early_callback_with_damaged_predictions_waits_for_hume_then_uses_its_api(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """A callback (right token) that says COMPLETED while Hume's API still says IN_PROGRESS, carrying
    predictions that cannot be read: nothing is stored until Hume confirms the job ended, then the
    predictions come from Hume's API and the job completes with exactly its rows."""
    service = make_service(**FAST)
    job, genuine = silent_job(service, emulator, "&slow=2")
    damaged = b'{"job_id": "%s", "status": "COMPLETED", "predictions": [{"source": 5}]}' % job["hume_job_id"].encode()
    assert post(genuine, damaged).status_code == 202
    time.sleep(0.5)
    with service.client() as client:
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] in {"queued", "in_progress"}
        done = wait_final(client, job["id"], timeout=30)
    assert done["status"] == "completed", done
    assert emulator.calls()["GET /v0/batch/jobs/{id}/predictions"] == 1  # the service's own fetch
    document = hume_predictions(emulator, EMULATOR_KEY, job["hume_job_id"])
    assert prediction_count(service.database_url, job["id"]) == expected_rows(document) == done["num_predictions"]
    assert rows(service.database_url, "SELECT state FROM inbox_event") == [("done",)]
