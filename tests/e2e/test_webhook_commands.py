"""`python -m app webhooks listen` and `webhooks replay`, run as users run them (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ServiceFactory
from tests.e2e.test_cli import run_cli
from tests.e2e.test_outbound_webhooks import FAST, only_message, register
from tests.reliability.helpers import wait_until
from tests.servers import free_port
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


def test_listen_registers_itself_verifies_and_prints_a_ping(make_service: ServiceFactory) -> None:
    service = make_service(**FAST)
    port = free_port()
    env = {**os.environ, "HES_API_KEY": service.key, "LOG_LEVEL": "WARNING"}
    listener = subprocess.Popen(
        [sys.executable, "-m", "app", "webhooks", "listen", "--port", str(port), "--service-url", service.url],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with service.client() as client:
            endpoints = wait_until(
                lambda: client.get("/v1/webhook-endpoints").json()["items"], 20, "the listener's endpoint"
            )
            time.sleep(0.5)  # its server starts right after registering
            assert client.post(f"/v1/webhook-endpoints/{endpoints[0]['id']}/test").status_code == 202
            only_message(client, endpoints[0]["id"], "delivered")
    finally:
        listener.terminate()
        output, _ = listener.communicate(timeout=20)
    assert "--> ping" in output and "(signature verified)" in output, output
    with service.client() as client:
        assert client.get("/v1/webhook-endpoints").json()["items"] == [], "the endpoint is removed on exit"


def test_replay_sends_undelivered_messages_again(make_service: ServiceFactory) -> None:
    service = make_service(**{**FAST, "webhook_retry_schedule_s": (0,)})
    with Receiver() as receiver, service.client() as client:
        receiver.statuses = [500]
        endpoint = register(client, receiver)
        client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        only_message(client, endpoint["id"], "failed")
        done = run_cli("webhooks", "replay", "--since", "2020-01-01", database_url=service.database_url)
        assert done.returncode == 0, done.stderr
        assert "1 undelivered message(s)" in done.stdout
        only_message(client, endpoint["id"], "delivered")
        deliveries = receiver.wait_for(2)
    assert deliveries[0].msg_id == deliveries[1].msg_id
