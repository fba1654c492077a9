"""An event that went dead because Hume was unreachable is not the end of its job: once Hume answers
again, the reconciler's poll finds the job ended and the same stored event is processed, exactly once."""

from __future__ import annotations

from typing import Any

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, ServiceFactory
from tests.reliability.helpers import (
    expected_rows,
    hume_predictions,
    prediction_count,
    rows,
    wait_final,
    wait_until,
)


def test_event_dead_while_hume_was_down_is_revived_by_the_reconciler(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """Hume's job API answers 503 through every retry of a callback's processing, so the event is dead
    (listed by the admin API, job not completed). When Hume recovers, the reconciler's poll revives that
    event (no second one), and the job completes with exactly Hume's predictions."""
    service = make_service(
        worker_max_attempts=2,
        worker_retry_base_s=0.1,
        worker_retry_cap_s=0.2,
        hume_max_retries=0,
        reconcile_after_s=1.0,
        reconcile_interval_s=1.0,
    )
    emulator.set_faults(path="/v0/batch/jobs/{id}", method="GET", status=503)
    with service.client() as client:
        job: dict[str, Any] = client.post(
            "/v1/jobs", json={"urls": ["https://example.com/outage.mp4#duration=5"]}
        ).json()

        def dead() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = client.get("/v1/admin/events", params={"state": "dead"}).json()["items"]
            return items

        [event] = wait_until(dead, 30, "the callback's event to go dead")
        assert event["job_id"] == job["id"] and event["attempts"] == 2
        assert "HumeTransientError" in event["last_error"]
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] in {"queued", "in_progress"}
        assert prediction_count(service.database_url, job["id"]) == 0

        emulator.set_faults(clear=True)
        done = wait_final(client, job["id"], timeout=60)
    assert done["status"] == "completed", done
    expected = expected_rows(hume_predictions(emulator, EMULATOR_KEY, done["hume_job_id"]))
    assert done["num_predictions"] == expected > 0
    assert prediction_count(service.database_url, job["id"]) == expected
    assert rows(service.database_url, "SELECT id, state FROM inbox_event") == [(event["id"], "done")]
