"""`make run` as a newcomer meets it: no Hume credentials, the built-in emulator, and a v1 job on the
emulator's own sample media completes with no other setting (README, "Jobs on Hume's v1 API")."""

from __future__ import annotations

import time

import httpx

from tests.conftest import BUILT_IN_EMULATOR, ServiceFactory
from tests.servers import free_port


def test_v1_job_on_the_emulators_sample_media_completes_out_of_the_box(make_service: ServiceFactory) -> None:
    service = make_service(**BUILT_IN_EMULATOR, emulator_port=free_port(), emulator_cloud_port=free_port())
    emulator_url = f"http://127.0.0.1:{service.server.settings.emulator_port}"
    assert httpx.get(f"{emulator_url}/_emulator/media/nope.mp4").status_code == 404
    urls = [f"{emulator_url}/_emulator/media/talk.mp4", f"{emulator_url}/_emulator/media/talk.wav"]
    with service.client() as client:
        created = client.post("/v1/jobs", json={"urls": urls, "backend": "v1"})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        deadline = time.monotonic() + 60
        job = created.json()
        while job["status"] not in {"completed", "failed", "rejected"} and time.monotonic() < deadline:
            time.sleep(0.3)
            job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "completed", job
        assert job["num_errors"] == 0 and job["num_predictions"] > 0
        summary = client.get(f"/v1/jobs/{job_id}/summary").json()
    # The MP4 has a picture and sound, the WAV sound: both v1 models measured something.
    assert summary["models"]["prosody"]["predictions"] > 0
    assert summary["models"]["face"]["predictions"] > 0
