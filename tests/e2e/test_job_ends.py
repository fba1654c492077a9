"""Every backend's job end reaches a subscribed endpoint through the one end (outbox.end_job), signed and
verified with the `standardwebhooks` library by the receiver: EVI chats here (batch and v1 ends are covered in
tests/e2e/test_outbound_webhooks.py, tests/reliability/test_stuck_jobs.py and tests/v1/test_v1_notifications.py),
and the end is counted once in jobs_ended_total."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.emulator.testing import EmulatorServer
from tests.conftest import ServiceFactory
from tests.e2e.test_outbound_webhooks import register
from tests.reliability.helpers import wait_until
from tests.webhook_receiver import Receiver

EVI_PATH = "/v1/webhooks/hume/evi"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def ended(url: str, kind: str, status: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
    return sum(
        sample.value for family in families for sample in family.samples
        if sample.name == "jobs_ended_total" and sample.labels == {"kind": kind, "status": status}
    )  # fmt: skip


def test_an_evi_chat_that_ends_is_announced_once_verified(
    make_service: ServiceFactory, emulator: EmulatorServer, receiver: Receiver
) -> None:
    service = make_service(allow_private_hosts="127.0.0.1", webhook_retry_schedule_s=(0, 0.1))
    before = ended(service.url, "evi_chat", "completed")
    with service.client() as client:
        endpoint = register(client, receiver, events=["evi_chat.completed"])
        chat = emulator.create_chat(turns=2, seed="one-end", webhook_url=service.url + EVI_PATH)
        [delivery] = receiver.wait_for(1, timeout=30)
        assert delivery.verified_by == [endpoint["secret"]]
        assert delivery.payload["type"] == "evi_chat.completed"
        job = delivery.payload["data"]["job"]
        [stored] = client.get("/v1/jobs", params={"kind": "evi_chat", "hume_id": chat["id"]}).json()["items"]
        assert job["status"] == "completed" and job["kind"] == "evi_chat" and job["id"] == stored["id"]
    wait_until(lambda: ended(service.url, "evi_chat", "completed") == before + 1 or None, 10, "the end counted")
