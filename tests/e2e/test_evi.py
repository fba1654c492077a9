"""EVI chats end to end: the emulator simulates a chat and sends signed webhooks to the service over a
socket, the worker pulls the chat's events with the real SDK, and analysts query the chat like a batch job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from hume import HumeClient

from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorServer
from app.hume.emotions import EXPRESSIONS_48
from app.hume.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory

EVI_PATH = "/v1/webhooks/hume/evi"


def wait_for_chat(client: httpx.Client, chat_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    """The chat's job, found the way an analyst finds it (kind + Hume id), once it reaches a status."""
    deadline = time.monotonic() + timeout
    while True:
        items = client.get("/v1/jobs", params={"kind": "evi_chat", "hume_id": chat_id}).json()["items"]
        if items and items[0]["status"] in statuses:
            assert len(items) == 1
            job: dict[str, Any] = items[0]
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"chat {chat_id} not in {statuses}: {items}")
        time.sleep(0.05)


def wait_for_events_done(database_url: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while rows(database_url, "SELECT count(*) FROM inbox_event WHERE state IN ('done', 'ignored')") < count:
        if time.monotonic() > deadline:
            raise AssertionError("inbox events were not processed")
        time.sleep(0.05)


def rows(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as conn:
        value = conn.execute(sql).fetchone()
    assert value is not None
    return int(value[0])


def post_signed(service: Service, payload: dict[str, Any], key: str = EMULATOR_KEY, **kw: Any) -> httpx.Response:
    body = orjson.dumps(payload)
    headers = signed_headers(body, key, now=kw.pop("now", time.time()))
    return httpx.post(service.url + EVI_PATH, content=body, headers=headers, timeout=10)


def chat_events(emulator: EmulatorServer, chat_id: str) -> list[Any]:
    client = HumeClient(api_key=EMULATOR_KEY, base_url=emulator.base_url)
    return list(client.empathic_voice.chats.list_chat_events(chat_id, page_size=7))


def test_emulated_chat_is_ingested_and_queryable(service: Service, emulator: EmulatorServer) -> None:
    """A chat the emulator runs (signed chat_started + chat_ended) becomes a completed evi_chat job whose
    prosody rows are the user and assistant utterances, each with its text, time and 48 scores; summary,
    timeline and predictions work as for batch jobs."""
    chat = emulator.create_chat(
        turns=6, config_id="cfg-support", custom_session_id="session-42", seed="e2e", webhook_url=service.url + EVI_PATH
    )
    with service.client() as client:
        job = wait_for_chat(client, chat["id"], {"completed"})
        # 14 events fit one page: one request for the history, not one more to find an empty page.
        assert emulator.calls().get("GET /v0/evi/chats/{id}") == 1
        assert job["kind"] == "evi_chat" and job["hume_job_id"] == chat["id"]
        details = job["details"]
        assert details["config_id"] == "cfg-support" and details["chat_group_id"] == chat["chat_group_id"]
        assert details["custom_session_id"] == "session-42" and details["chat_start_type"] == "new_chat_group"
        assert details["end_reason"] == "USER_ENDED" and details["duration_seconds"] >= 0
        assert details["start_time_ms"] == chat["start_timestamp"]
        assert job["started_at"] is not None and job["completed_at"] is not None

        events = chat_events(emulator, chat["id"])
        scored = [e for e in events if e.emotion_features]
        assert job["num_predictions"] == len(scored) == 12
        page = client.get(f"/v1/jobs/{job['id']}/predictions", params={"limit": 100, "group": "user"}).json()
        users = [e for e in scored if e.role == "USER"]
        assert len(page["items"]) == len(users) == 6
        for row, event in zip(sorted(page["items"], key=lambda r: r["time_begin"]), users, strict=True):
            assert row["model"] == "prosody" and row["group"] == "user"
            assert row["text"] == event.message_text and row["event_id"] == event.id
            assert row["time_begin"] == pytest.approx((event.timestamp - chat["start_timestamp"]) / 1000)
            assert event.emotion_features is not None
            expected = orjson.loads(event.emotion_features)
            got = row["scores"]
            assert set(got) == set(EXPRESSIONS_48)
            assert all(got[name] == pytest.approx(expected[name], abs=0.51e-4) for name in EXPRESSIONS_48)  # 4 decimals

        assistant = client.get(f"/v1/jobs/{job['id']}/predictions", params={"group": "assistant"}).json()["items"]
        # Assistant scores come in ASSISTANT_PROSODY events; each row carries the text of the message scored.
        assert len(assistant) == 6
        assert {r["text"] for r in assistant} == {e.message_text for e in events if e.type == "AGENT_MESSAGE"}

        summary = client.get(f"/v1/jobs/{job['id']}/summary").json()
        prosody = summary["models"]["prosody"]
        assert prosody["predictions"] == 12 and len(prosody["emotions"]) == 48
        means = [e["mean"] for e in prosody["emotions"]]
        assert means == sorted(means, reverse=True)
        joy = sum(orjson.loads(e.emotion_features or "{}")["Joy"] for e in scored) / len(scored)
        assert next(e for e in prosody["emotions"] if e["name"] == "Joy")["mean"] == pytest.approx(joy, abs=0.51e-4)

        timeline = client.get(
            f"/v1/jobs/{job['id']}/timeline", params={"model": "prosody", "emotion": "Joy", "bucket_s": 10}
        )
        assert timeline.status_code == 200, timeline.text
        points = timeline.json()["points"]
        assert sum(p["count"] for p in points) == 12
    # Both webhooks went through the inbox and were applied once.
    assert rows(service.database_url, "SELECT count(*) FROM inbox_event WHERE provider = 'hume_evi'") == 2
    wait_for_events_done(service.database_url, 2)
    assert [d["status_code"] for d in emulator.deliveries("evi_webhook")] == [202, 202]


def test_chat_ended_alone_then_late_chat_started_never_moves_the_chat_back(
    service: Service, emulator: EmulatorServer
) -> None:
    """chat_ended with no chat_started completes the chat; a chat_started arriving afterwards adds its
    facts (caller, start type), overwrites none it already has, and leaves it completed with its predictions."""
    chat = emulator.create_chat(turns=3, seed="order", send_webhooks=False, custom_session_id="s-1")
    base = {"chat_group_id": chat["chat_group_id"], "chat_id": chat["id"], "config_id": None}
    ended = {
        **base, "event_name": "chat_ended", "end_time": chat["end_timestamp"], "duration_seconds": 27,
        "end_reason": "USER_ENDED", "custom_session_id": "s-1",
    }  # fmt: skip
    assert post_signed(service, ended).status_code == 202
    with service.client() as client:
        done = wait_for_chat(client, chat["id"], {"completed"})
        assert done["num_predictions"] == 6
        started = {
            **base, "event_name": "chat_started", "start_time": chat["start_timestamp"],
            "chat_start_type": "new_chat_group", "caller_number": "+12223333333", "custom_session_id": "s-other",
        }  # fmt: skip
        assert post_signed(service, started).status_code == 202
        wait_for_events_done(service.database_url, 2)
        after = client.get(f"/v1/jobs/{done['id']}").json()
    assert after["status"] == "completed" and after["num_predictions"] == 6
    assert after["completed_at"] == done["completed_at"]
    assert after["details"]["caller_number"] == "+12223333333"
    assert after["details"]["chat_start_type"] == "new_chat_group"
    assert after["details"]["end_reason"] == "USER_ENDED" and after["details"]["duration_seconds"] == 27
    assert after["details"]["custom_session_id"] == "s-1", "a known detail was overwritten"
    assert rows(service.database_url, "SELECT count(*) FROM prediction") == 6


def test_replayed_webhooks_do_nothing(service: Service, emulator: EmulatorServer) -> None:
    """Hume retrying a delivery (re-signed, later) answers 200 'duplicate' and stores nothing more."""
    chat = emulator.create_chat(turns=2, seed="replay", webhook_url=service.url + EVI_PATH)
    with service.client() as client:
        job = wait_for_chat(client, chat["id"], {"completed"})
    wait_for_events_done(service.database_url, 2)
    before = rows(service.database_url, "SELECT count(*) FROM prediction")
    ended = {
        "event_name": "chat_ended", "chat_group_id": chat["chat_group_id"], "chat_id": chat["id"],
        "end_time": chat["end_timestamp"], "duration_seconds": 18, "end_reason": "USER_ENDED",
    }  # fmt: skip
    for _ in range(2):
        again = post_signed(service, ended, now=time.time() + 5)
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert rows(service.database_url, "SELECT count(*) FROM inbox_event") == 2
    assert rows(service.database_url, "SELECT count(*) FROM prediction") == before == 4
    assert rows(service.database_url, "SELECT count(*) FROM job") == 1
    with service.client() as client:
        assert client.get(f"/v1/jobs/{job['id']}").json()["num_predictions"] == 4


def test_tool_calls_and_unknown_events_are_kept_in_the_inbox(service: Service) -> None:
    """tool_call events are stored (one per tool call id) against the chat's job; an event name we do not
    know yet is stored and marked ignored rather than refused, so Hume does not retry it forever."""
    message = {
        "name": "get_weather", "parameters": '{"city": "Oslo"}', "response_required": True,
        "tool_call_id": "call-1", "tool_type": "function",
    }  # fmt: skip
    tool_call: dict[str, Any] = {
        "event_name": "tool_call", "chat_group_id": "g-1", "chat_id": "chat-tools", "timestamp": 1_800_000_000_000,
        "tool_call_message": message,
    }  # fmt: skip
    assert post_signed(service, tool_call).status_code == 202
    assert post_signed(service, tool_call).status_code == 200
    second = {**tool_call, "tool_call_message": {**message, "tool_call_id": "call-2"}}
    assert post_signed(service, second).status_code == 202
    unknown = {"event_name": "chat_paused", "chat_group_id": "g-1", "chat_id": "chat-tools"}
    assert post_signed(service, unknown).status_code == 202
    wait_for_events_done(service.database_url, 3)
    with psycopg.connect(service.database_url) as conn:
        stored = conn.execute(
            "SELECT e.event_type, e.state, j.kind, j.hume_job_id, j.status FROM inbox_event e JOIN job j"
            " ON j.id = e.job_id ORDER BY e.id"
        ).fetchall()
    assert stored == [
        ("tool_call", "done", "evi_chat", "chat-tools", "in_progress"),
        ("tool_call", "done", "evi_chat", "chat-tools", "in_progress"),
        ("chat_paused", "ignored", "evi_chat", "chat-tools", "in_progress"),
    ]


Headers = Callable[[bytes, float], dict[str, str]]
# Well past the 300 s tolerance: a slow machine between signing and sending cannot bring them back in range
# (the exact boundary is covered by the unit tests of the verifier).
MARGIN_S = 360


def _sign(key: str = EMULATOR_KEY, shift: float = 0) -> Headers:
    return lambda body, now: signed_headers(body, key, now=now + shift)


def _without(header: str) -> Headers:
    return lambda body, now: {k: v for k, v in signed_headers(body, EMULATOR_KEY, now=now).items() if k != header}


STARTED = orjson.dumps({"event_name": "chat_started", "chat_group_id": "g", "chat_id": "c", "start_time": 1,
                        "chat_start_type": "new_chat_group"})  # fmt: skip
BAD_DELIVERIES: list[tuple[str, bytes, Headers, int]] = [
    ("forged", STARTED, lambda body, now: {**_sign()(body, now), SIGNATURE_HEADER: "0" * 64}, 401),
    ("tampered", STARTED.replace(b'"c"', b'"d"'), lambda body, now: _sign()(STARTED, now), 401),
    ("stale", STARTED, _sign(shift=-MARGIN_S), 401),
    ("future", STARTED, _sign(shift=MARGIN_S), 401),
    ("missing signature", STARTED, _without(SIGNATURE_HEADER), 401),
    ("missing timestamp", STARTED, _without(TIMESTAMP_HEADER), 401),
    ("wrong key", STARTED, _sign("not-our-key"), 401),
    ("garbage headers", STARTED, lambda body, now: {SIGNATURE_HEADER: "\u00e9t\u00e9", TIMESTAMP_HEADER: "soon"}, 401),
    ("non-UTF-8 body, signed", b"\xff\xfe{", _sign(), 422),
    ("not an event, signed", b"[1, 2]", _sign(), 422),
    ("chat_started lacking start_time", b'{"event_name":"chat_started","chat_id":"c","chat_group_id":"g",'
     b'"chat_start_type":"new_chat_group"}', _sign(), 422),
    ("huge chat id", b'{"event_name":"chat_ended","chat_group_id":"g","chat_id":"' + b"x" * 5000 + b'"}', _sign(), 422),
]  # fmt: skip


def test_bad_deliveries_are_refused_and_store_nothing(service: Service) -> None:
    """Forged, tampered, stale, future, unsigned and wrong-key deliveries get 401; signed garbage gets 422;
    each is a JSON error and not one row is written."""
    for name, body, sign, status in BAD_DELIVERIES:
        # Sent as raw bytes so that non-ASCII header values reach the service as a client could send them.
        raw = [(k.encode(), v.encode("latin-1")) for k, v in sign(body, time.time()).items()]
        response = httpx.post(service.url + EVI_PATH, content=body, headers=raw, timeout=10)
        assert response.status_code == status, (name, response.text)
        assert set(response.json()["error"]) >= {"code", "message"}, name
    assert rows(service.database_url, "SELECT count(*) FROM inbox_event") == 0
    assert rows(service.database_url, "SELECT count(*) FROM job") == 0
    assert rows(service.database_url, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'process_event'") == 0


def test_oversized_body_is_refused_before_reading(make_service: ServiceFactory) -> None:
    """A body over the EVI webhook cap is a 413 and stores nothing."""
    service = make_service(max_evi_body_bytes=1000)
    response = post_signed(service, {"event_name": "chat_started", "chat_id": "c", "pad": "x" * 2000})
    assert response.status_code == 413
    assert rows(service.database_url, "SELECT count(*) FROM inbox_event") == 0


def test_dedicated_signing_key_with_rotation(make_service: ServiceFactory) -> None:
    """With HUME_WEBHOOK_SIGNING_KEY set, an emulator signing with it gets its chat ingested, deliveries
    signed with the previous key are still accepted, and ones signed with the API key are refused."""
    config = EmulatorConfig(api_key=EMULATOR_KEY, evi_signing_key="signing-new", callback_backoff_s=0.01)
    with EmulatorServer(config) as emu:
        service = make_service(
            hume_voice_url=emu.base_url,
            hume_webhook_signing_key="signing-new",
            hume_webhook_previous_signing_key="signing-old",
        )
        current = emu.create_chat(turns=2, seed="k-new", webhook_url=service.url + EVI_PATH)
        previous = emu.create_chat(turns=3, seed="k-old", send_webhooks=False)
        refused = emu.create_chat(turns=1, seed="k-api", send_webhooks=False)

        def ended(chat: dict[str, Any]) -> dict[str, Any]:
            return {
                "event_name": "chat_ended", "chat_group_id": chat["chat_group_id"], "chat_id": chat["id"],
                "end_time": chat["end_timestamp"], "duration_seconds": 9, "end_reason": "USER_ENDED",
            }  # fmt: skip

        assert post_signed(service, ended(previous), key="signing-old").status_code == 202
        assert post_signed(service, ended(refused), key=EMULATOR_KEY).status_code == 401
        with service.client() as client:
            assert wait_for_chat(client, current["id"], {"completed"})["num_predictions"] == 4
            assert wait_for_chat(client, previous["id"], {"completed"})["num_predictions"] == 6
        assert [d["status_code"] for d in emu.deliveries("evi_webhook")] == [202, 202]
    refused_id = refused["id"]
    assert rows(service.database_url, f"SELECT count(*) FROM job WHERE hume_job_id = '{refused_id}'") == 0
    assert rows(service.database_url, "SELECT count(*) FROM job") == 2
