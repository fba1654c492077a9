"""Postgres goes away for 10 s while Hume's callbacks arrive: webhooks answer 503, /readyz fails, and once
the database is back the service recovers by itself and every job is ingested exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, create_key, service_settings
from tests.reliability.helpers import (
    expected_rows,
    hume_predictions,
    prediction_count,
    rows,
    wait_final,
    wait_until,
)
from tests.reliability.pg import OwnPostgres, own_postgres
from tests.servers import ServiceServer

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0
JOBS = 12


@pytest.fixture
def postgres() -> Iterator[OwnPostgres]:
    with own_postgres() as pg:
        yield pg


def test_postgres_down_for_ten_seconds_during_a_burst_of_callbacks_loses_nothing(
    postgres: OwnPostgres, emulator: EmulatorServer
) -> None:
    """Jobs whose callbacks land while Postgres is stopped: those deliveries get 503 (never 500), /readyz
    is 503 meanwhile; after Postgres returns, with no restart of the service, every job completes with
    exactly Hume's predictions, no event is dead and no job has a second set of rows."""
    settings = service_settings(
        postgres.url,
        emulator,
        reconcile_after_s=2.0,
        reconcile_interval_s=1.0,
        stalled_after_s=3.0,
        worker_heartbeat_s=0.5,
        worker_retry_base_s=0.2,
        worker_retry_cap_s=1.0,
    )
    with ServiceServer(settings) as server:
        key = create_key(postgres.url, ["submit", "read"])
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        # Callbacks spread over the outage: the emulator holds job i for i/2 s after it is accepted.
        ids = [
            client.post(
                "/v1/jobs", json={"urls": [f"https://example.com/burst-{i}.mp4#duration=3&slow={0.8 + i * 0.6:.1f}"]}
            ).json()["id"]
            for i in range(JOBS)
        ]
        wait_until(
            lambda: all(client.get(f"/v1/jobs/{i}").json()["hume_job_id"] for i in ids), 20, "Hume to accept the jobs"
        )
        hume_ids = {i: client.get(f"/v1/jobs/{i}").json()["hume_job_id"] for i in ids}
        postgres.stop()
        stopped = time.monotonic()
        try:
            assert client.get("/readyz").status_code == 503
            wait_until(
                lambda: any(d.get("status_code") == 503 for d in emulator.deliveries("batch_callback")),
                OUTAGE_S - 2,
                "a callback refused with 503 during the outage",
            )
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        finally:
            postgres.start()
        refused = [d for d in emulator.deliveries("batch_callback") if d.get("status_code") == 503]
        answered = {d.get("status_code") for d in emulator.deliveries("batch_callback")}
        assert refused and 500 not in answered, answered

        wait_until(lambda: client.get("/readyz").status_code == 200, 20, "readiness after the outage")
        for job_id in ids:
            done = wait_final(client, job_id, timeout=60)
            expected = expected_rows(hume_predictions(emulator, EMULATOR_KEY, hume_ids[job_id]))
            assert done["status"] == "completed", done
            assert done["num_predictions"] == expected > 0
            assert prediction_count(postgres.url, job_id) == expected
        assert rows(postgres.url, "SELECT state, count(*) FROM inbox_event GROUP BY state") == [("done", JOBS)]
        client.close()
