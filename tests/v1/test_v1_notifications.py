"""A v1 job's end is announced like any job's (app/worker/outbox.py): an endpoint subscribed to job.completed
or job.rejected hears it, signed, verified by the `standardwebhooks` library. Media served over a socket, the
emulator's v1 API, real Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, ServiceFactory
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_wav
from tests.v1.media_server import media_server
from tests.v1.test_v1_jobs import FINAL
from tests.webhook_receiver import Receiver


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("notified-media")
    make_wav(directory / "voice.wav", 2.0)
    with media_server(directory) as url:
        yield url


@pytest.mark.parametrize("ending", ["completed", "rejected"])
def test_an_endpoint_hears_a_v1_job_end(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str, ending: str
) -> None:
    service = make_service(allow_private_hosts="127.0.0.1")
    if ending == "rejected":
        emulator.set_faults(v1_not_enabled=[EMULATOR_KEY])  # 403: the organization may not use v1
    with service.client() as client, Receiver() as receiver:
        endpoint = client.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": [f"job.{ending}"]})
        assert endpoint.status_code == 201, endpoint.text
        receiver.secrets.append(endpoint.json()["secret"])
        body = {"urls": [f"{media}/media/voice.wav"], "backend": "v1", "models": {"prosody": {}}}
        job = client.post("/v1/jobs", json=body).json()
        assert wait_for_status(client, job["id"], FINAL, timeout=60)["status"] == ending
        [delivery] = receiver.wait_for(1)
    assert delivery.verified_by == [endpoint.json()["secret"]]
    assert delivery.payload["type"] == f"job.{ending}"
    assert delivery.payload["data"]["job"]["id"] == job["id"]
    assert delivery.payload["data"]["job"]["status"] == ending
