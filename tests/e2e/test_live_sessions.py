"""Live sessions over real sockets: the service (uvicorn) relays a browser's WebSocket (the `websockets` library
plays the browser) to the emulator's v1 realtime endpoints, and the session lands in the store as a job."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.emulator.testing import EmulatorServer
from app.store import api_keys
from app.store.db import make_engine, make_sessionmaker
from tests.conftest import Service, ServiceFactory, create_key
from tests.e2e.test_outbound_webhooks import register
from tests.emulator.media import jpeg_with_faces, pcm_tones
from tests.webhook_receiver import Receiver

SECOND = 32_000  # bytes of 16 kHz s16le mono audio (HUME-V1-FACTS §3)
AUDIO_REALTIME = "/v1/expression/audio/realtime"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def mint(service: Service, key: str | None = None, **body: Any) -> dict[str, Any]:
    with service.client(key) as client:
        answer = client.post("/v1/session-tokens", json=body)
    assert answer.status_code == 201, answer.text
    minted: dict[str, Any] = answer.json()
    return minted


async def read_until_closed(ws: ClientConnection, limit_s: float = 20) -> list[Any]:
    """Every message until the relay closes the socket."""
    received: list[Any] = []
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(limit_s):
            while True:
                message = await ws.recv()
                received.append(json.loads(message) if isinstance(message, str) else message)
    return received


async def closed_with(url: str, **connect: Any) -> tuple[int | None, str]:
    async with websockets.connect(url, **connect) as ws:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                await ws.recv()
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


async def revoke(database_url: str, key: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            principal = await api_keys.find(session, key)
            assert principal is not None
            assert await api_keys.revoke(session, principal.key_id)
    finally:
        await engine.dispose()


def job_of(service: Service, job_id: str, key: str | None = None) -> httpx.Response:
    with service.client(key) as client:
        return client.get(f"/v1/jobs/{job_id}")


def test_minting_needs_the_session_scope(make_service: ServiceFactory) -> None:
    service = make_service()
    reader = create_key(service.database_url, ["read", "submit"], name="no-session")
    with service.client(reader) as client:
        refused = client.post("/v1/session-tokens", json={})
    assert refused.status_code == 403, refused.text
    assert "'session' scope" in refused.json()["error"]["message"]
    with service.client() as client:
        bad = client.post("/v1/session-tokens", json={"metadata": "not an object"})
        assert bad.status_code == 422, bad.text
        assert "metadata" in bad.text
    minted = mint(service, metadata={"room": "a"})
    assert minted["token"].startswith("hst_") and 55 <= minted["expires_in"] <= 60
    assert minted["urls"]["audio"].startswith("ws://") and minted["urls"]["audio"].endswith(f"?token={minted['token']}")


@pytest.fixture
def short_tokens(make_service: ServiceFactory) -> Service:
    return make_service(session_token_ttl_s=1)


@pytest.fixture
def announcing(make_service: ServiceFactory) -> Service:
    """Delivers its webhooks to a local receiver; stores a session's measurements every 100 ms."""
    return make_service(allow_private_hosts="127.0.0.1", webhook_retry_schedule_s=(0, 0.1), session_flush_ms=100)


@pytest.fixture
def tenant_b_key(short_tokens: Service) -> str:
    return create_key(short_tokens.database_url, ["session"], "tenant-b", "tenant-b")


async def test_refused_tokens_close_with_a_clear_code(
    short_tokens: Service, tenant_b_key: str, emulator: EmulatorServer
) -> None:
    service = short_tokens
    base = service.url.replace("http://", "ws://") + "/v1/sessions/audio"
    assert await closed_with(base) == (4401, "token missing: pass ?token= or the hes.token.<token> subprotocol")
    code, reason = await closed_with(base + "?token=hst_forged")
    assert (code, reason) == (4401, "token unknown")
    expired = mint(service)
    await asyncio.sleep(1.2)
    code, reason = await closed_with(expired["urls"]["audio"])
    assert code == 4401 and reason.startswith("token expired")
    # The minting key is checked again when the socket opens: revoked since, its token opens nothing.
    revoked = mint(service, tenant_b_key)
    await revoke(service.database_url, tenant_b_key)
    code, reason = await closed_with(revoked["urls"]["audio"])
    assert (code, reason) == (4403, "the API key that minted this token was revoked")
    assert not [call for call in emulator.calls() if "realtime" in call], "a refused token must not reach Hume"


async def test_an_audio_session_is_relayed_stored_and_announced(announcing: Service, receiver: Receiver) -> None:
    service = announcing
    with service.client() as client:
        register(client, receiver, events=["job.completed"])
    minted = mint(service, metadata={"room": "lobby"})
    speech = pcm_tones(4.5, [(0.2, 4.0)])
    measured_live = 0
    async with websockets.connect(minted["urls"]["audio"], subprotocols=None) as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created" and created["measurement_timer_ms"] == 3000
        started = time.monotonic()
        for offset in range(0, len(speech), SECOND // 4):
            # Real time: 0.25 s of audio every 0.25 s, as a microphone sends it.
            await asyncio.sleep(max(0.0, started + offset / SECOND - time.monotonic()))
            await ws.send(speech[offset : offset + SECOND // 4])
        # While the session runs, its job is `live` and its measurements so far are queryable.
        deadline = time.monotonic() + 10
        while measured_live == 0 and time.monotonic() < deadline:
            job = job_of(service, minted["job_id"]).json()
            assert job["status"] == "live" and job["kind"] == "session"
            measured_live = job["num_predictions"]
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "session.close"}))
        received = await read_until_closed(ws)
        assert ws.close_code == 1000
    kinds = [m["type"] for m in received]
    assert kinds[-1] == "session.closed" and "utterance.end" in kinds
    results = [m for m in received if m["type"] == "measurement.result"]
    assert measured_live >= 1 and results, kinds
    job = job_of(service, minted["job_id"]).json()
    assert job["status"] == "completed" and job["metadata"] == {"room": "lobby"}
    assert job["num_predictions"] == len(results)  # one prediction per audio measurement, each stored once
    with service.client() as client:
        rows = client.get(f"/v1/jobs/{minted['job_id']}/predictions", params={"limit": 100}).json()["items"]
    assert len(rows) == job["num_predictions"]
    # Charted like any job: the summary reads the stats the batches folded in.
    with service.client() as client:
        summary = client.get(f"/v1/jobs/{minted['job_id']}/summary").json()
    assert summary["models"]["prosody"]["predictions"] == len(results)
    [delivery] = receiver.wait_for(1, timeout=30)
    assert delivery.payload["type"] == "job.completed"
    assert delivery.payload["data"]["job"]["id"] == minted["job_id"]
    # One token, one session: the same URL opens nothing a second time.
    assert await closed_with(minted["urls"]["audio"]) == (4401, "token already used: one token opens one session")


async def test_oversized_and_too_fast_frames_never_reach_hume(announcing: Service) -> None:
    service = announcing
    minted = mint(service)
    async with websockets.connect(minted["urls"]["audio"], max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        # 2 s of audio at once runs 1 s past the clock Hume allows (1 s of audio per second, HUME-V1-FACTS §4).
        await ws.send(b"\x00\x01" * SECOND)
        too_fast = json.loads(await ws.recv())
        # A frame of more than 10 s (320,000 bytes) and a frame of odd length are not audio Hume takes.
        await ws.send(b"\x00" * 320_002)
        too_long = json.loads(await ws.recv())
        await ws.send(b"\x00" * 3)
        odd = json.loads(await ws.recv())
        await ws.send(pcm_tones(0.5, [(0.0, 0.5)]))  # this one is forwarded
        await ws.send(json.dumps({"type": "session.close"}))
        received = await read_until_closed(ws)
    assert (too_fast["code"], too_fast["retryable"], too_fast["source"]) == ("rate_limited", True, "relay")
    assert (too_long["code"], odd["code"]) == ("invalid_audio_frame", "invalid_audio_frame")
    assert "320000 bytes" in too_long["message"] and "even length" in odd["message"]
    closed = received[-1]
    assert closed["type"] == "session.closed"
    # Hume heard the one frame that was within its limits, and none of the others.
    assert closed["received"] == {"audio_duration_ms": 500, "frames": 1}
    job = job_of(service, minted["job_id"]).json()
    assert job["status"] == "completed"

    # A message over 1 MiB would end the session at Hume: it is refused here, and the session ends failed.
    minted = mint(service)
    async with websockets.connect(minted["urls"]["audio"], max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(b"\x00" * (1_048_576 + 2))
        received = await read_until_closed(ws)
        assert (ws.close_code, ws.close_reason) == (1008, "message_too_large")
    error = received[0]
    assert (error["type"], error["code"], error["retryable"]) == ("error", "message_too_large", False)
    assert received[-1]["type"] == "session.closed" and received[-1]["received"]["frames"] == 0
    job = job_of(service, minted["job_id"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "message_too_large"


async def test_hume_ending_the_session_closes_the_browser_and_fails_the_job(announcing: Service) -> None:
    service = announcing
    minted = mint(service)
    async with websockets.connect(minted["urls"]["audio"]) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(pcm_tones(0.5, [(0.0, 0.5)]))
        # A session.update after the first frame is fatal at Hume (HUME-V1-FACTS §3): Hume ends the session.
        await ws.send(json.dumps({"type": "session.update", "measurement_timer_ms": 4000}))
        received = await read_until_closed(ws)
        assert ws.close_code == 1008
    errors = [m for m in received if m["type"] == "error"]
    assert errors and errors[0]["code"] == "config_invalid" and "source" not in errors[0], "Hume's own error"
    job = job_of(service, minted["job_id"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "config_invalid"


async def test_a_video_session_stores_each_frame_once(announcing: Service) -> None:
    service = announcing
    minted = mint(service)
    image = jpeg_with_faces("faces=2")
    async with websockets.connect(minted["urls"]["video"]) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        for _ in range(4):  # 3 frames a second: the fourth, at once, is refused here
            await ws.send(image)
        await ws.send(json.dumps({"type": "session.close"}))
        received = await read_until_closed(ws)
    refused = [m for m in received if m["type"] == "error"]
    results = [m for m in received if m["type"] == "measurement.result"]
    assert [m["code"] for m in refused] == ["rate_limited"]
    assert [m["frame_id"] for m in results] == [0, 1, 2]
    job = job_of(service, minted["job_id"]).json()
    faces = sum(1 for m in results for face in m["faces"] if face["face_id"] is not None)
    assert job["status"] == "completed" and job["num_predictions"] == faces > 0


async def test_a_service_restart_mid_session_fails_the_job_keeping_what_was_stored(announcing: Service) -> None:
    service = announcing
    minted = mint(service)
    speech = pcm_tones(3.5, [(0.0, 3.5)])
    async with websockets.connect(minted["urls"]["audio"]) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        started = time.monotonic()
        for offset in range(0, len(speech), SECOND // 4):
            await asyncio.sleep(max(0.0, started + offset / SECOND - time.monotonic()))
            await ws.send(speech[offset : offset + SECOND // 4])
        deadline = time.monotonic() + 10
        while job_of(service, minted["job_id"]).json()["num_predictions"] == 0:
            assert time.monotonic() < deadline, "the first measurement was not stored while the session ran"
            await asyncio.sleep(0.1)
        stopping = asyncio.create_task(asyncio.to_thread(service.server.__exit__, None, None, None))
        await read_until_closed(ws)
        assert ws.close_code == 1012
        await stopping
    engine = make_engine(service.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            status, code, count = (
                await session.execute(
                    text("SELECT status, error_code, num_predictions FROM job WHERE id = :id"), {"id": minted["job_id"]}
                )
            ).one()
    finally:
        await engine.dispose()
    assert (status, code) == ("failed", "service_restart") and count >= 1


async def test_a_browser_that_drops_ends_hume_s_session_cleanly(announcing: Service) -> None:
    service = announcing
    minted = mint(service)
    speech = pcm_tones(1.5, [(0.0, 1.5)])
    async with websockets.connect(minted["urls"]["audio"]) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        started = time.monotonic()
        for offset in range(0, len(speech), SECOND // 4):
            await asyncio.sleep(max(0.0, started + offset / SECOND - time.monotonic()))
            await ws.send(speech[offset : offset + SECOND // 4])
        ws.transport.abort()  # gone without a close frame, as a closed laptop lid
    deadline = time.monotonic() + 15
    while (job := job_of(service, minted["job_id"]).json())["status"] == "live":
        assert time.monotonic() < deadline, "the session's job was left live"
        await asyncio.sleep(0.1)
    # The relay closed Hume's session with session.close: Hume measured the speech it had (a final, speech_ended
    # measurement: an utterance gets at least one, HUME-V1-FACTS §6) and ended it in order.
    assert job["status"] == "completed" and job["num_predictions"] == 1


@pytest.mark.parametrize(
    ("error", "close_code", "job_error"),
    [(None, 1001, "hume_server_shutdown"), ("internal_error", 1008, "internal_error")],
)
async def test_hume_ending_a_session_from_its_side(
    announcing: Service, emulator: EmulatorServer, error: str | None, close_code: int, job_error: str
) -> None:
    """Hume shutting down (session.closed server_shutdown, 1001) or failing a measurement (error, 1008): the
    browser hears Hume's messages and close code, and the job fails naming why."""
    service = announcing
    minted = mint(service)
    async with websockets.connect(minted["urls"]["audio"]) as ws:
        created = json.loads(await ws.recv())
        await ws.send(pcm_tones(0.5, [(0.0, 0.5)]))
        body = {"session_id": created["session_id"], **({"error": error} if error else {})}
        ended = await asyncio.to_thread(httpx.post, f"{emulator.base_url}/_emulator/realtime/end", json=body)
        assert ended.status_code == 200, ended.text
        received = await read_until_closed(ws)
        assert ws.close_code == close_code
    assert received[-1]["type"] == "session.closed"
    job = job_of(service, minted["job_id"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == job_error
    assert job["hume_job_id"] == created["session_id"], "Hume's session id is its run id, kept with the job"


@pytest.fixture
def wrong_hume_key(make_service: ServiceFactory) -> Service:
    return make_service(hume_cloud_api_key="not-the-key")


async def test_hume_refusing_the_handshake_closes_with_1011_and_fails_the_job(wrong_hume_key: Service) -> None:
    minted = mint(wrong_hume_key)
    code, reason = await closed_with(minted["urls"]["audio"])
    assert (code, reason) == (1011, "Hume did not open the session: Hume refused the realtime session with HTTP 401")
    job = job_of(wrong_hume_key, minted["job_id"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "hume_unauthorized"
    assert "not-the-key" not in reason + json.dumps(job), "the Hume key is never shown"


@pytest.fixture
def two_tenants(announcing: Service) -> tuple[str, str]:
    """A browser app's key of tenant b (mints and reads) and a reader of tenant c."""
    return (
        create_key(announcing.database_url, ["session", "read"], "app-b", "tenant-b"),
        create_key(announcing.database_url, ["read"], "reader-c", "tenant-c"),
    )


async def test_a_session_belongs_to_its_token_s_tenant(announcing: Service, two_tenants: tuple[str, str]) -> None:
    key_b, key_c = two_tenants
    minted = mint(announcing, key_b, metadata={"customer": "b1"})
    # The token as a subprotocol, as a browser may send it instead of the query: `hes.session` is selected.
    url = minted["urls"]["audio"].split("?")[0]
    offered = [Subprotocol("hes.session"), Subprotocol(minted["subprotocol"])]
    async with websockets.connect(url, subprotocols=offered) as ws:
        assert ws.subprotocol == "hes.session"
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps({"type": "session.close"}))
        await read_until_closed(ws)
    assert job_of(announcing, minted["job_id"], key_c).status_code == 404, "another tenant cannot see it"
    # The handshake is a request to Hume: it spent one slot of the organization's shared budget (the only
    # Hume request this service made).
    engine = make_engine(announcing.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            budgets = (await session.execute(text("SELECT name FROM request_budget"))).scalars().all()
    finally:
        await engine.dispose()
    assert len(budgets) == 1 and budgets[0].startswith("hume:")
    job = job_of(announcing, minted["job_id"], key_b).json()
    assert job["status"] == "completed" and job["metadata"] == {"customer": "b1"}
