"""The worker that ended a job killed with SIGKILL while it delivers the job's webhook, then started again.

The receiver holds the first delivery unanswered, so the kill lands after the job's end (and its message)
committed and before any attempt was recorded, every time, not by luck of timing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import ServiceFactory, start_worker, worker_environment
from tests.reliability.helpers import rows, scalar, wait_until
from tests.webhook_receiver import Receiver

STALLED_AFTER_S = 3.0


@pytest.mark.slow
def test_worker_killed_while_delivering_a_job_end_delivers_it_after_restart(
    make_service: ServiceFactory, emulator: EmulatorServer, workers: list[subprocess.Popen[bytes]]
) -> None:
    service = make_service(run_worker=False, allow_private_hosts="127.0.0.1")
    url = service.database_url
    # A killed worker's claimed message goes out again when its lease ends (WEBHOOK_TIMEOUT_S + 5 s): a 4 s
    # timeout keeps the wait at 9 s instead of 15 (the test took 23 s with the default).
    env = worker_environment(service, emulator, STALLED_AFTER_S, ALLOW_PRIVATE_HOSTS="127.0.0.1", WEBHOOK_TIMEOUT_S="4")
    with Receiver(delays_s=[60.0]) as receiver, service.client() as client:
        created = client.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["job.completed"]})
        assert created.status_code == 201, created.text
        receiver.secrets.append(created.json()["secret"])
        first = start_worker(env, workers)
        job = client.post("/v1/jobs", json={"urls": ["https://example.com/interview.mp4#duration=5"]}).json()
        [held] = receiver.wait_for(1, timeout=60)  # the first attempt, left waiting for its answer
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        # Killed after the job's end committed with its message, before any attempt was recorded.
        assert scalar(url, "SELECT status FROM job WHERE id = %s", job["id"]) == "completed"
        assert rows(url, "SELECT state, attempts FROM webhook_message") == [("pending", 0)]
        assert scalar(url, "SELECT count(*) FROM webhook_attempt") == 0

        restarted_at = time.monotonic()
        start_worker(env, workers)
        wait_until(
            lambda: rows(url, "SELECT state FROM webhook_message") == [("delivered",)],
            STALLED_AFTER_S + 30, "the message to be delivered by the restarted worker",
        )  # fmt: skip
        recovered_s = time.monotonic() - restarted_at
        deliveries = receiver.wait_for(2)

    # At least once, as one message: the receiver saw it twice under one webhook-id, both signed with
    # the endpoint's secret, and the log holds the one attempt that was answered.
    assert [d.msg_id for d in deliveries] == [held.msg_id] * 2
    assert all(d.verified_by == receiver.secrets for d in deliveries)
    assert [d.payload["type"] for d in deliveries] == ["job.completed"] * 2
    assert deliveries[1].payload["data"]["job"]["id"] == job["id"]
    assert rows(url, "SELECT status_code, error FROM webhook_attempt") == [(200, None)]
    assert rows(url, "SELECT attempts FROM webhook_message") == [(1,)]
    sys.stderr.write(f"outbound kill: delivered {recovered_s:.1f} s after the restart\n")


@pytest.mark.slow
def test_worker_killed_mid_batch_repeats_no_message_whose_delivery_was_recorded(
    make_service: ServiceFactory, emulator: EmulatorServer, workers: list[subprocess.Popen[bytes]]
) -> None:
    """Ten messages of one endpoint go out in one batch; the receiver answers four at once and holds six. The
    worker is killed once the four are recorded: after the restart the six are sent again (their lease
    ended: at least once), the four never."""
    service = make_service(run_worker=False, allow_private_hosts="127.0.0.1")
    url = service.database_url
    env = worker_environment(service, emulator, STALLED_AFTER_S, ALLOW_PRIVATE_HOSTS="127.0.0.1", WEBHOOK_TIMEOUT_S="4")
    with Receiver(delays_s=[0.0] * 4 + [60.0] * 6) as receiver, service.client() as client:
        created = client.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["job.completed"]})
        assert created.status_code == 201, created.text
        receiver.secrets.append(created.json()["secret"])
        for _ in range(10):
            assert client.post(f"/v1/webhook-endpoints/{created.json()['id']}/test").status_code == 202
        first = start_worker(env, workers)
        receiver.wait_for(10, timeout=60)  # all ten under way at once
        wait_until(
            lambda: scalar(url, "SELECT count(*) FROM webhook_message WHERE state = 'delivered'") == 4,
            20, "the four answered to be recorded",
        )  # fmt: skip
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        recorded = {m for (m,) in rows(url, "SELECT msg_id FROM webhook_message WHERE state = 'delivered'")}
        assert rows(url, "SELECT state, attempts, count(*) FROM webhook_message GROUP BY 1, 2 ORDER BY 1") == [
            ("delivered", 1, 4), ("pending", 0, 6),
        ]  # fmt: skip
        assert scalar(url, "SELECT count(*) FROM webhook_attempt") == 4

        start_worker(env, workers)
        wait_until(
            lambda: scalar(url, "SELECT count(*) FROM webhook_message WHERE state = 'delivered'") == 10,
            STALLED_AFTER_S + 40, "every message delivered after the restart",
        )  # fmt: skip
        deliveries = receiver.wait_for(16)

    sent = Counter(d.msg_id for d in deliveries)
    assert len(sent) == 10 and sum(sent.values()) == 16
    assert all(sent[m] == 1 for m in recorded), "a recorded delivery is never sent again"
    assert all(count == 2 for m, count in sent.items() if m not in recorded)
    assert all(d.verified_by == receiver.secrets for d in deliveries)
    # One attempt row a message: the held attempts were never answered, so never recorded.
    assert rows(url, "SELECT count(*), min(status_code), max(status_code) FROM webhook_attempt") == [(10, 200, 200)]
    assert rows(url, "SELECT DISTINCT attempts FROM webhook_message") == [(1,)]
