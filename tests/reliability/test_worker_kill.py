"""A worker process killed with SIGKILL in the middle of ingesting a twenty-minute video's job, then started again.

The service runs without an in-process worker; `python -m app worker` runs in a subprocess. The test
freezes the ingest after its predictions COPY (it holds a lock on the stats table the same transaction
writes next), so the kill lands mid-ingest every time, not by luck of timing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psycopg
import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, ServiceFactory, start_worker, worker_environment
from tests.reliability.helpers import (
    expected_rows,
    hume_predictions,
    prediction_count,
    rows,
    scalar,
    wait_final,
    wait_until,
)

STALLED_AFTER_S = 3.0


@pytest.mark.slow
def test_worker_killed_mid_ingest_then_restarted_completes_with_exact_rows(
    make_service: ServiceFactory, emulator: EmulatorServer, workers: list[subprocess.Popen[bytes]]
) -> None:
    """kill -9 of the worker while a twenty-minute video's predictions are half written: nothing of the
    uncommitted ingest survives, and a restarted worker takes the stalled task back (heartbeat timeout)
    and completes the job with exactly Hume's row count."""
    service = make_service(run_worker=False)
    url = service.database_url
    env = worker_environment(service, emulator, STALLED_AFTER_S)
    with psycopg.connect(url) as blocker:
        # Held until after the kill: the worker's ingest writes predictions, then waits here.
        blocker.execute("LOCK TABLE emotion_stat IN ACCESS EXCLUSIVE MODE")
        first = start_worker(env, workers)
        with service.client() as client:
            job = client.post("/v1/jobs", json={"urls": ["https://example.com/keynote.mp4#duration=1200"]}).json()
            wait_until(
                lambda: scalar(
                    url,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'COPY emotion_stat%%' AND datname = current_database()",
                ),
                60,
                "the ingest to reach the stats COPY",
            )
            assert scalar(url, "SELECT status FROM job WHERE id = %s", job["id"]) != "completed"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        blocker.rollback()

    assert prediction_count(url, job["id"]) == 0, "an uncommitted ingest left rows behind"
    assert rows(url, "SELECT state FROM inbox_event") == [("received",)]
    restarted_at = time.monotonic()
    start_worker(env, workers)
    with service.client() as client:
        done = wait_final(client, job["id"], timeout=STALLED_AFTER_S + 30)
    recovered_s = time.monotonic() - restarted_at
    assert done["status"] == "completed", done
    expected = expected_rows(hume_predictions(emulator, EMULATOR_KEY, done["hume_job_id"]))
    assert expected > 3_600  # twenty minutes of video at 3 fps, plus the audio models
    assert done["num_predictions"] == expected
    assert prediction_count(url, job["id"]) == expected
    assert rows(url, "SELECT state FROM inbox_event") == [("done",)]
    # The stalled task is picked up within the heartbeat timeout plus a reconcile round or two.
    assert recovered_s < STALLED_AFTER_S + 20, recovered_s
    sys.stderr.write(f"worker kill: recovered in {recovered_s:.1f} s with {expected} predictions\n")
