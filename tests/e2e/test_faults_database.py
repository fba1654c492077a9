"""Postgres stopped for 10 s while a burst of Hume callbacks arrives; then started again.

The database is the test's own embedded Postgres (pgserver), never the shared server. The emulator
retries refused callbacks with doubling backoff (1 s, 2 s, 4 s, ...), as a webhook sender does; the
reconciler's deadline is far away, so every job must be completed by a retried callback.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import embedded
from app.cli import migrate
from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, create_key, service_settings
from tests.e2e.faults import expected_rows, hume_predictions, prediction_count, rows, wait_final, wait_until
from tests.servers import ServiceServer

OUTAGE_S = 10.0
JOBS = 12


class OwnPostgres:
    """An embedded Postgres this test may stop and start."""

    def __init__(self, directory: Path) -> None:
        self.handle, self.url = embedded.start(directory / "data", cleanup="delete")

    def stop(self) -> None:
        from pgserver import _commands

        # Fast shutdown: sessions are cut and new connections refused, as in a crash or failover.
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.handle.pgdata, user=self.handle.system_user)  # type: ignore[attr-defined]

    def start(self) -> None:
        self.handle.ensure_postgres_running()
        assert str(self.handle.get_uri()) == self.url, "Postgres came back on another socket"


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    directory = Path(tempfile.mkdtemp(prefix="hes-outage-"))
    pg = OwnPostgres(directory)
    try:
        migrate(pg.url)
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.start()  # the handle stops (and deletes) only a running server cleanly
        with contextlib.suppress(Exception):
            embedded.stop(pg.handle)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def patient_emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(api_key=EMULATOR_KEY, callback_backoff_s=1.0, callback_max_attempts=7)
    with EmulatorServer(config) as emulator:
        yield emulator


def test_database_outage_during_callbacks_loses_nothing(
    own_postgres: OwnPostgres, patient_emulator: EmulatorServer
) -> None:
    """While Postgres is down, callbacks get 503 (never 500) and /readyz is 503; when it returns, with no
    restart of the service, the retried callbacks are stored and every job completes with exactly Hume's
    predictions, each once."""
    emulator = patient_emulator
    settings = service_settings(
        own_postgres.url,
        emulator,
        reconcile_after_s=3600,
        reconcile_interval_s=1,
        worker_heartbeat_s=0.5,
        stalled_after_s=3,
        worker_retry_base_s=0.2,
        worker_retry_cap_s=2.0,
    )
    with ServiceServer(settings) as server:
        key = create_key(own_postgres.url, ["submit", "read"])
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        # Hume holds job i for 0.5 + 0.6 i s: its callbacks land across the outage.
        ids = [
            client.post(
                "/v1/jobs", json={"urls": [f"https://example.com/burst-{i}.mp4#duration=4&slow={0.5 + 0.6 * i:.1f}"]}
            ).json()["id"]
            for i in range(JOBS)
        ]

        def submitted() -> dict[str, Any] | None:
            jobs = {i: client.get(f"/v1/jobs/{i}").json() for i in ids}
            return jobs if all(j["hume_job_id"] for j in jobs.values()) else None

        hume_ids = {i: j["hume_job_id"] for i, j in wait_until(submitted, 20, "Hume to accept every job").items()}
        own_postgres.stop()
        stopped = time.monotonic()
        try:
            assert client.get("/readyz").status_code == 503
            assert client.get(f"/v1/jobs/{ids[0]}").status_code == 503
            wait_until(
                lambda: any(d.get("status_code") == 503 for d in emulator.deliveries("batch_callback")),
                OUTAGE_S - 1,
                "a callback refused during the outage",
            )
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        finally:
            own_postgres.start()

        wait_until(lambda: client.get("/readyz").status_code == 200, 20, "readiness once Postgres is back")
        for job_id in ids:
            done = wait_final(client, job_id, timeout=60)
            expected = expected_rows(hume_predictions(emulator, EMULATOR_KEY, hume_ids[job_id]))
            assert done["status"] == "completed", done
            assert done["num_predictions"] == expected > 0
            assert prediction_count(own_postgres.url, job_id) == expected
        client.close()

    deliveries = emulator.deliveries("batch_callback")
    statuses = [d.get("status_code") for d in deliveries]
    assert statuses.count(503) >= 1 and 500 not in statuses, statuses
    assert all(
        d["ok"] for d in deliveries if d["attempt"] == max(x["attempt"] for x in deliveries if x["ref"] == d["ref"])
    )
    assert rows(own_postgres.url, "SELECT provider, state, count(*) FROM inbox_event GROUP BY 1, 2") == [
        ("hume_batch", "done", JOBS)
    ]
