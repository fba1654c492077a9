"""An EVI chat followed live, as deployed: the emulator is configured with the service's webhook URL (as a
Hume EVI config is), a chat starts and stays open for a while, then ends; analysts see it in progress
and then completed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorServer
from app.store import api_keys
from tests.conftest import EMULATOR_KEY, create_key, service_settings
from tests.servers import ServiceServer, bind

EVI_PATH = "/v1/webhooks/hume/evi"


@pytest.fixture
def deployed(database_url: str) -> Iterator[tuple[httpx.Client, EmulatorServer]]:
    """The service and an emulator that knows the service's webhook URL from its configuration."""
    sock = bind()
    webhook_url = f"http://127.0.0.1:{sock.getsockname()[1]}{EVI_PATH}"
    config = EmulatorConfig(api_key=EMULATOR_KEY, evi_webhook_url=webhook_url, seed_evi_chats=0)
    with EmulatorServer(config) as emulator, ServiceServer(service_settings(database_url, emulator), sock) as server:
        key = create_key(database_url, list(api_keys.SCOPES))
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            yield client, emulator


def wait_for(client: httpx.Client, chat_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        items = client.get("/v1/jobs", params={"kind": "evi_chat", "hume_id": chat_id}).json()["items"]
        if items and items[0]["status"] == status and (status != "in_progress" or items[0]["details"]):
            job: dict[str, Any] = items[0]
            return job
        assert time.monotonic() < deadline, f"chat {chat_id} never {status}: {items}"
        time.sleep(0.05)


def test_open_chat_is_in_progress_then_completed_when_it_ends(
    deployed: tuple[httpx.Client, EmulatorServer],
) -> None:
    """chat_started makes an in-progress evi_chat job carrying the config, chat group, session and start
    time, with no predictions yet; when the chat ends (inactivity) the job completes with the end reason,
    the user and assistant prosody (apart on the timeline), and the end time as its completion time."""
    client, emulator = deployed
    chat = emulator.create_chat(turns=3, active=True, config_id="cfg-live", custom_session_id="live-1", seed="live")
    job = wait_for(client, chat["id"], "in_progress")
    assert job["kind"] == "evi_chat" and job["num_predictions"] == 0 and job["completed_at"] is None
    details = job["details"]
    assert details["config_id"] == "cfg-live" and details["custom_session_id"] == "live-1"
    assert details["chat_group_id"] == chat["chat_group_id"] and details["start_time_ms"] == chat["start_timestamp"]
    assert "end_reason" not in details
    assert client.get(f"/v1/jobs/{job['id']}/predictions").json()["items"] == []

    ended = httpx.post(
        f"{emulator.base_url}/_emulator/evi/chats/{chat['id']}/end", json={"end_reason": "INACTIVITY_TIMEOUT"}
    )
    assert ended.status_code == 200, ended.text
    done = wait_for(client, chat["id"], "completed")
    assert done["id"] == job["id"] and done["num_predictions"] == 6
    assert done["details"]["end_reason"] == "INACTIVITY_TIMEOUT" and done["details"]["config_id"] == "cfg-live"
    completed_ms = datetime.fromisoformat(done["completed_at"]).timestamp() * 1000
    assert completed_ms == pytest.approx(ended.json()["end_timestamp"], abs=1)
    groups = [p["group"] for p in client.get(f"/v1/jobs/{done['id']}/predictions").json()["items"]]
    assert sorted(groups) == ["assistant"] * 3 + ["user"] * 3
    # The conversation over time, the caller and the assistant apart.
    timeline = client.get(
        f"/v1/jobs/{done['id']}/timeline", params={"model": "prosody", "emotion": "Calmness", "per_group": "true"}
    ).json()["points"]
    assert {p["group"] for p in timeline} == {"user", "assistant"}
    assert sum(p["count"] for p in timeline if p["group"] == "user") == 3
    assert [d["status_code"] for d in emulator.deliveries("evi_webhook")] == [202, 202]
