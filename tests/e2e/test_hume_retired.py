"""With a real Hume key, Hume's retired APIs are said to be retired, not called: the service runs with its
voice-era host set to Hume's own (https://api.hume.ai, whose TTS and EVI ended 2026-11-13 and batch 2026-06-15)
and its cloud host at the emulator. What it stored while a compatible server answered stays served."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.config import HUME_VOICE_URL
from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, ServiceFactory, hume_environment
from tests.e2e.test_evi import post_signed
from tests.e2e.test_spine import wait_for_status

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Said once, while Hume still spoke."


def hume_requests(client: httpx.Client, operation: str) -> float:
    """Requests the service's Hume clients sent for `operation`, from its own /metrics (counted at the
    transport: refused connections and timeouts count too)."""
    pattern = re.compile(rf'^hume_request_seconds_count\{{[^}}]*operation="{operation}"[^}}]*\}} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(client.get("/metrics").text))


def test_tts_serves_its_cache_and_refuses_new_texts_without_calling_hume(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """A text cached while the emulator answered is still served against Hume's own host; a new text is a 410
    `hume_retired` naming 2026-11-13, and no TTS request leaves the service."""
    before = make_service()
    with before.client() as client:
        cached = client.post("/v1/tts", json={"text": TEXT, "format": "wav"})
    assert cached.status_code == 200 and cached.headers["x-cache"] == "miss", cached.text

    live = make_service(hume_voice_url=HUME_VOICE_URL)
    with live.client() as client:
        sent = hume_requests(client, "tts")
        hit = client.post("/v1/tts", json={"text": TEXT, "format": "wav"})
        new = client.post("/v1/tts", json={"text": "Something Hume never said.", "format": "wav"})
        streamed = client.post("/v1/tts", json={"text": "Nor this, streamed.", "stream": True})
        assert hume_requests(client, "tts") == sent
    assert hit.status_code == 200 and hit.headers["x-cache"] == "hit"
    assert hit.content == cached.content
    for refused in (new, streamed):
        assert refused.status_code == 410, refused.text
        error = refused.json()["error"]
        assert error["code"] == "hume_retired"
        assert "2026-11-13" in error["message"] and "TTS" in error["message"]


def test_batch_job_is_rejected_naming_the_sunset_without_calling_hume(
    make_service: ServiceFactory, emulator: EmulatorServer
) -> None:
    """A batch job against Hume's own host ends `rejected` (`hume_sunset`) naming 2026-06-15 and the v1
    backend, and no batch request is sent; the same job against the emulator still runs."""
    service = make_service(hume_voice_url=HUME_VOICE_URL)
    with service.client() as client:
        sent = hume_requests(client, "batch")
        job = client.post("/v1/jobs", json={"urls": ["https://example.com/talk.mp4"], "backend": "batch"}).json()
        done = wait_for_status(client, job["id"], {"rejected", "failed", "completed"})
        assert hume_requests(client, "batch") == sent
    assert done["status"] == "rejected", done
    assert done["error"]["code"] == "hume_sunset"
    assert "2026-06-15" in done["error"]["message"] and '"backend": "v1"' in done["error"]["message"]
    assert emulator.calls().get("POST /v0/batch/jobs", 0) == 0


def backfill(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    return subprocess.run(
        [sys.executable, "-m", "app", "evi-backfill", "--since", since],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING", **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_evi_backfill_names_the_retirement_and_stored_chats_stay(
    make_service: ServiceFactory, emulator: EmulatorServer, database_url: str
) -> None:
    """Chats stored from a compatible server stay queryable against Hume's own host, where `evi-backfill`
    stops with one line naming EVI's end (2026-11-13) and a non-zero exit code, asking nothing."""
    chat = emulator.create_chat(turns=2, seed="kept", send_webhooks=False)
    stored = backfill({"DATABASE_URL": database_url, **hume_environment(emulator)})
    assert stored.returncode == 0 and "1 ingested" in stored.stdout, stored.stderr

    calls = emulator.calls()
    retired = backfill(
        {"DATABASE_URL": database_url, "HUME_API_KEY": EMULATOR_KEY, "HUME_CLOUD_URL": emulator.cloud_url}
    )
    assert retired.returncode == 1
    assert retired.stdout == ""
    lines = retired.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "2026-11-13" in lines[0], retired.stderr
    assert "EVI" in lines[0] and "Traceback" not in retired.stderr
    assert emulator.calls() == calls

    service = make_service(hume_voice_url=HUME_VOICE_URL)
    with service.client() as client:
        items = client.get("/v1/jobs", params={"kind": "evi_chat", "hume_id": chat["id"]}).json()["items"]
        assert [(job["status"], job["num_predictions"]) for job in items] == [("completed", 4)]
        rows = client.get(f"/v1/jobs/{items[0]['id']}/predictions").json()["items"]
    assert {row["group"] for row in rows} == {"user", "assistant"}


@pytest.mark.parametrize("status", [404, 410])
def test_a_token_endpoint_that_is_gone_is_a_clear_410(
    make_service: ServiceFactory, emulator: EmulatorServer, status: int
) -> None:
    """Hume's docs no longer name a token endpoint (HUME-V1-FACTS §1): a 404/410 from /oauth2-cc/token is our
    410 `hume_retired` saying Hume no longer serves access tokens there, not a credentials error; Hume's body
    stays out of it."""
    service = make_service()
    emulator.set_faults(path="/oauth2-cc/token", status=status, body={"message": "upstream-detail"})
    with service.client() as client:
        gone = client.get("/api/hume/auth")
    assert gone.status_code == 410, gone.text
    error = gone.json()["error"]
    assert error["code"] == "hume_retired"
    assert "no longer serves access tokens" in error["message"] and "/oauth2-cc/token" in error["message"]
    assert f"answered {status}" in error["message"] and "upstream-detail" not in gone.text


def test_an_archived_chat_ended_is_accepted_and_goes_dead_naming_evis_end(make_service: ServiceFactory) -> None:
    """The EVI webhook route stays: an archived (signed) chat_ended delivered against Hume's own host is
    acknowledged and stored, then goes dead naming 2026-11-13 instead of asking Hume for a history it deleted."""
    service = make_service(hume_voice_url=HUME_VOICE_URL)
    ended = {"chat_group_id": "g-archived", "chat_id": "c-archived", "event_name": "chat_ended",
             "end_time": 1_760_000_000_000, "duration_seconds": 30, "end_reason": "USER_ENDED"}  # fmt: skip
    with service.client() as client:
        sent = hume_requests(client, "evi")
        assert post_signed(service, ended).status_code == 202
        deadline = time.monotonic() + 20
        while not (dead := client.get("/v1/admin/events", params={"state": "dead"}).json()["items"]):
            assert time.monotonic() < deadline, "the event never went dead"
            time.sleep(0.1)
        assert hume_requests(client, "evi") == sent
        [chat] = client.get("/v1/jobs", params={"kind": "evi_chat", "hume_id": "c-archived"}).json()["items"]
    [event] = dead
    assert "2026-11-13" in event["last_error"] and "EVI" in event["last_error"], event
    assert chat["status"] != "completed"
