"""Hume's refusals read as Hume documents them (HUME-V1-FACTS §1, §5): a 401 is our key, a 403 is an
organization not enabled for v1 (a limited release), and each ends the job `rejected` saying which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.emulator.testing import EmulatorServer
from app.hume.errors import HumeTransientError
from app.hume.expression_client import ExpressionClient
from tests.conftest import EMULATOR_KEY, ServiceFactory
from tests.e2e.test_spine import wait_for_status
from tests.hume_hosts_stand_in import one_second_wav
from tests.media_factory import make_wav
from tests.v1.media_server import GAPS, media_server
from tests.v1.test_v1_jobs import FINAL


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("media")
    make_wav(directory / "voice.wav", 3.0, gaps=GAPS[:1])
    with media_server(directory) as url:
        yield url


def v1_job(make_service: ServiceFactory, media: str, **settings: object) -> dict[str, object]:
    service = make_service(allow_private_hosts="127.0.0.1", **settings)
    with service.client() as client:
        body = {"urls": [f"{media}/media/voice.wav"], "backend": "v1", "models": {"prosody": {}}}
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        return wait_for_status(client, response.json()["id"], FINAL, timeout=60)


def test_a_403_says_the_organization_is_not_enabled_for_v1(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    emulator.set_faults(v1_not_enabled=[EMULATOR_KEY])
    job = v1_job(make_service, media)
    assert job["status"] == "rejected"
    error = job["error"]
    assert isinstance(error, dict) and error["code"] == "hume_not_enabled"
    assert "not enabled for the v1" in error["message"] and "limited release" in error["message"]
    assert emulator.calls()["POST /v1/expression/audio/file"] == 1  # refused at once: no retries of a 403


def test_a_401_says_the_key(make_service: ServiceFactory, emulator: EmulatorServer, media: str) -> None:
    job = v1_job(make_service, media, hume_api_key="not-the-emulators-key")
    assert job["status"] == "rejected"
    error = job["error"]
    assert isinstance(error, dict) and error["code"] == "hume_unauthorized"
    assert "refused the API key (401)" in error["message"]


def test_a_separate_cloud_key_is_what_v1_calls_carry(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """HUME_CLOUD_API_KEY (a key from Hume's Platform) wins over HUME_API_KEY for v1 calls only."""
    job = v1_job(make_service, media, hume_api_key="a-voice-era-key", hume_cloud_api_key=EMULATOR_KEY)
    assert job["status"] == "completed", job


async def test_an_error_body_the_sdk_cannot_parse_is_still_judged_by_its_status(emulator: EmulatorServer) -> None:
    """A 503 whose body lacks v1's type/code (as a gateway in front of Hume might answer) fails the SDK's error
    model; it is still Hume busy, to be waited out, not an unknown failure."""
    client = ExpressionClient(api_key=EMULATOR_KEY, base_url=emulator.cloud_url, max_retries=0)
    emulator.set_faults(path="/v1/expression/audio/file", status=503, body={"message": "upstream busy"}, times=1)
    try:
        with pytest.raises(HumeTransientError, match="503"):
            await client.measure_audio(one_second_wav())
        assert (await client.measure_audio(one_second_wav())).run_id  # the next try goes through
    finally:
        await client.aclose()
