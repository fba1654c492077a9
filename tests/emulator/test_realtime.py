"""Hume's v1 realtime WebSockets on the emulator, driven over real sockets by the official SDK's realtime
clients (`hume-expression-measurement`) and, for raw frames and close codes, by the `websockets` library."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from hume_expression_measurement import AsyncExpressionMeasurementClient
from hume_expression_measurement.core.api_error import ApiError
from hume_expression_measurement.reconnect import reconnecting
from hume_expression_measurement.types import (
    AudioConfigUpdate,
    AudioFileConfig,
    AudioMeasurementResult,
    AudioSessionClosed,
    AudioSessionCreated,
    AudioSessionUpdate,
    AudioSessionUpdated,
    Error,
    FaceConfigUpdate,
    SessionClose,
    UtteranceEnd,
    UtteranceStart,
    VideoMeasurementResult,
    VideoSessionClosed,
    VideoSessionCreated,
    VideoSessionUpdate,
    VideoSessionUpdated,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError

from app.emulator import EmulatorConfig
from app.emulator.cli import build_parser, config_from_args
from app.emulator.testing import EmulatorServer

from .conftest import API_KEY
from .media import jpeg_with_faces, padded_jpeg, pcm_tones
from .test_v1 import v1_client

AUDIO_PATH = "/v1/expression/audio/realtime"
VIDEO_PATH = "/v1/expression/video/realtime"
HEADERS = {"X-Hume-Api-Key": API_KEY}
SECOND = 32_000  # bytes of 16 kHz s16le mono audio


@pytest.fixture(scope="module")
def fast() -> Iterator[EmulatorServer]:
    """Media may run far ahead of the clock, so recorded audio and frames can be sent at once."""
    with EmulatorServer(EmulatorConfig(realtime_rate_slack_s=3600)) as server:
        yield server


@pytest.fixture
def emu_fast(fast: EmulatorServer) -> EmulatorServer:
    fast.reset()
    return fast


@pytest.fixture
def v1(emu_fast: EmulatorServer) -> AsyncExpressionMeasurementClient:
    return v1_client(emu_fast.cloud_url)


def ws_url(emu: EmulatorServer, path: str) -> str:
    return emu.cloud_url.replace("http", "ws", 1) + path


@pytest.fixture
async def raw(emu_fast: EmulatorServer) -> AsyncIterator[Any]:
    """Open raw sockets to the fast emulator; each is closed at the end."""
    opened: list[ClientConnection] = []

    async def connect(path: str, emu: EmulatorServer = emu_fast) -> ClientConnection:
        ws = await websockets.connect(ws_url(emu, path), additional_headers=HEADERS)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        await ws.close()


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes the connection."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosedError):  # a close code other than 1000 ends iteration this way
        async for message in ws:
            out.append(json.loads(message))
    return out


async def get(url: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(headers=HEADERS) as http:
        return await http.get(url, params=params)


async def run_of(emu: EmulatorServer, run_id: str) -> dict[str, Any]:
    resp = await get(f"{emu.cloud_url}/v1/expression/run/{run_id}")
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


async def ended_run(emu: EmulatorServer, run_id: str, within_s: float = 5.0) -> dict[str, Any]:
    """The run once the server has noticed that its session ended."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        run = await run_of(emu, run_id)
        if run["status"] != "live" or asyncio.get_running_loop().time() > deadline:
            return run
        await asyncio.sleep(0.02)


async def events_of(emu: EmulatorServer, run_id: str, page_size: int = 200) -> list[dict[str, Any]]:
    """The run's whole event log, page by page."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"page_size": page_size, **({"cursor": cursor} if cursor else {})}
        resp = await get(f"{emu.cloud_url}/v1/expression/run/{run_id}/events", **params)
        resp.raise_for_status()
        page = resp.json()
        events += page["events"]
        cursor = page.get("next_cursor")
        if cursor is None:
            return events


async def stream(socket: Any, pcm: bytes, frame_bytes: int = 3_200) -> None:
    for i in range(0, len(pcm), frame_bytes):
        await socket.send_audio_frame(pcm[i : i + frame_bytes])


# Audio


async def test_audio_session_streams_what_an_upload_measures(
    v1: AsyncExpressionMeasurementClient, emu_fast: EmulatorServer
) -> None:
    """Utterances bracket their measurements, and the measurements equal an upload's of the same audio, also for
    speech still going on at session.close; session.closed counts what was received and produced."""
    pcm = pcm_tones(12.0, [(0.5, 8.0), (10.0, 12.0)])  # the second tone runs to the end: close ends it
    messages: list[Any] = []
    async with v1.audio.connect() as socket:
        created = await socket.recv()
        assert isinstance(created, AudioSessionCreated)
        assert created.measurement_timer_ms == 3000
        assert (created.audio.type, created.audio.encoding, created.audio.sample_rate, created.audio.channels) == (
            "audio/pcm", "s16le", 16_000, 1)  # fmt: skip
        await stream(socket, pcm)
        await socket.send_audio_session_close(SessionClose(type="session.close"))
        async for message in socket:
            messages.append(message)
    upload = await v1.audio.measure(file=("talk.pcm", pcm, "application/octet-stream"))
    starts = [m for m in messages if isinstance(m, UtteranceStart)]
    ends = [m for m in messages if isinstance(m, UtteranceEnd)]
    results = [m for m in messages if isinstance(m, AudioMeasurementResult)]
    assert [(u.utterance_id, u.audio_start_ms, u.audio_end_ms) for u in upload.utterances] == [
        (e.utterance_id, e.audio_start_ms, e.audio_end_ms) for e in ends]  # fmt: skip
    assert [s.audio_start_ms for s in starts] == [e.audio_start_ms for e in ends]
    assert len(upload.measurements) == 4  # two intervals and a speech_ended, then the closed utterance's
    assert [r.model_dump(exclude={"type"}) for r in results] == [m.model_dump() for m in upload.measurements]
    # Each utterance's messages come between its start and its end, and session.closed is last.
    kinds = [(type(m).__name__, getattr(m, "utterance_id", None)) for m in messages]
    assert kinds == [("UtteranceStart", 0), *[("AudioMeasurementResult", 0)] * 3, ("UtteranceEnd", 0),
                     ("UtteranceStart", 1), ("AudioMeasurementResult", 1), ("UtteranceEnd", 1),
                     ("AudioSessionClosed", None)]  # fmt: skip
    closed = messages[-1]
    assert isinstance(closed, AudioSessionClosed)
    assert closed.session_id == created.session_id and closed.reason == "client_request"
    assert (closed.received.audio_duration_ms, closed.received.frames) == (12_000, len(pcm) // 3_200)
    assert (closed.produced.utterances, closed.produced.measurements) == (2, 4)
    run = await run_of(emu_fast, created.session_id)
    assert (run["mode"], run["endpoint"], run["status"]) == ("realtime", "audio", "ended")
    assert (run["close_code"], run["close_reason"], run["metered_seconds"]) == (1000, "client_request", 12.0)
    assert run["bytes_received"] == len(pcm) and run["ended_at"] is not None
    assert run["config"]["measurement_timer_ms"] == 3000
    assert await events_of(emu_fast, created.session_id) == []  # nothing went wrong


@pytest.mark.parametrize("frame_bytes", [1_000, 7_002, 320_000])
async def test_long_speech_in_any_frame_size_matches_the_upload(
    v1: AsyncExpressionMeasurementClient, frame_bytes: int
) -> None:
    """Frames cut anywhere join into one stream: 40 s with a 25 s utterance (10 s spans, audio long past what the
    session keeps), a short blip under the utterance minimum, and a gap just under the joining gap."""
    pcm = pcm_tones(40.0, [(1.0, 26.0), (27.0, 27.05), (30.0, 33.0), (33.25, 36.0)])
    async with v1.audio.connect() as socket:
        await socket.recv()
        await socket.send_audio_session_update(AudioSessionUpdate(type="session.update", measurement_timer_ms=4000))
        await socket.recv()
        await stream(socket, pcm, frame_bytes)
        await socket.send_audio_session_close(SessionClose(type="session.close"))
        messages = [m async for m in socket]
    upload = await v1.audio.measure(file=("talk.pcm", pcm, "application/octet-stream"), config=AudioFileConfig(
        measurement_timer_ms=4000))  # fmt: skip
    results = [m.model_dump(exclude={"type"}) for m in messages if isinstance(m, AudioMeasurementResult)]
    ends = [(m.audio_start_ms, m.audio_end_ms) for m in messages if isinstance(m, UtteranceEnd)]
    assert ends == [(u.audio_start_ms, u.audio_end_ms) for u in upload.utterances] and len(ends) == 2
    assert results == [m.model_dump() for m in upload.measurements] and len(results) >= 8
    assert max(r["audio_end_ms"] - r["audio_start_ms"] for r in results) == 10_000


async def test_session_update_resets_omitted_fields_and_is_fatal_after_media(
    v1: AsyncExpressionMeasurementClient, emu_fast: EmulatorServer
) -> None:
    async with v1.audio.connect() as socket:
        created = await socket.recv()
        assert isinstance(created, AudioSessionCreated)
        await socket.send_audio_session_update(AudioSessionUpdate(type="session.update", measurement_timer_ms=5000))
        updated = await socket.recv()
        assert isinstance(updated, AudioSessionUpdated)
        assert updated.measurement_timer_ms == 5000 and updated.audio.sample_rate == 16_000
        assert (await run_of(emu_fast, created.session_id))["config"]["measurement_timer_ms"] == 5000
        # An update that omits the timer puts it back to its default.
        audio = AudioConfigUpdate(type="audio/pcm", encoding="s16le", sample_rate=16_000, channels=1)
        await socket.send_audio_session_update(AudioSessionUpdate(type="session.update", audio=audio))
        again = await socket.recv()
        assert isinstance(again, AudioSessionUpdated) and again.measurement_timer_ms == 3000
        await socket.send_audio_frame(bytes(3_200))
        await socket.send_audio_session_update(AudioSessionUpdate(type="session.update", measurement_timer_ms=4000))
        error = await socket.recv()
        assert isinstance(error, Error)
        assert (error.code, error.retryable) == ("config_invalid", False)
        closed = await socket.recv()
        assert isinstance(closed, AudioSessionClosed) and closed.reason == "error"
        assert closed.received.frames == 1
    run = await run_of(emu_fast, created.session_id)
    assert (run["status"], run["close_code"], run["close_reason"]) == ("errored", 1008, "error")
    assert run["config"]["measurement_timer_ms"] == 3000
    assert run["metered_seconds"] == 10.0  # 0.1 s taken in, billed the 10 s minimum


@pytest.mark.parametrize(
    "update",
    [
        pytest.param({"audio": {"sample_rate": 44_100}}, id="44.1kHz"),
        pytest.param({"audio": {"encoding": "f32le"}}, id="float"),
        pytest.param({"audio": {"channels": 2}}, id="stereo"),
        pytest.param({"measurement_timer_ms": 2999}, id="timer-too-short"),
        pytest.param({"timer_ms": 3000}, id="unknown-field"),
    ],
)
async def test_other_audio_configs_end_the_session_with_config_invalid(raw: Any, update: dict[str, Any]) -> None:
    ws = await raw(AUDIO_PATH)
    assert (await recv(ws))["type"] == "session.created"
    await ws.send(json.dumps({"type": "session.update", **update}))
    error, closed = await until_closed(ws)
    assert (error["type"], error["code"], error["retryable"]) == ("error", "config_invalid", False)
    assert error["message"]
    assert closed["type"] == "session.closed" and closed["reason"] == "error"
    assert ws.close_code == 1008


async def test_bad_audio_frames_are_refused_and_the_session_continues(raw: Any, emu_fast: EmulatorServer) -> None:
    ws = await raw(AUDIO_PATH)
    session_id = (await recv(ws))["session_id"]
    for frame in (b"", bytes(3), bytes(320_002)):
        await ws.send(frame)
        error = await recv(ws)
        assert (error["type"], error["code"], error["retryable"]) == ("error", "invalid_audio_frame", True)
    await ws.send(bytes(320_000))  # exactly 10 s: accepted, not acknowledged
    await ws.send(json.dumps({"type": "bogus"}))
    invalid = await recv(ws)
    assert (invalid["code"], invalid["retryable"]) == ("message_invalid", True)
    await ws.send(json.dumps({"type": "session.close"}))
    (closed,) = await until_closed(ws)
    assert closed["received"] == {"audio_duration_ms": 10_000, "frames": 1}
    assert ws.close_code == 1000
    events = await events_of(emu_fast, session_id, page_size=1)  # one per page: the cursor walks the log
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert {e["kind"] for e in events} == {"invalid_audio_frame"}
    assert all(e["detail"]["detail"] and e["at"].endswith("Z") for e in events)


async def test_a_message_over_1_mib_ends_an_audio_session(raw: Any, emu_fast: EmulatorServer) -> None:
    ws = await raw(AUDIO_PATH)
    session_id = (await recv(ws))["session_id"]
    await ws.send(bytes(1_048_576))  # at the limit: only an invalid frame (over 320,000 bytes)
    assert (await recv(ws))["code"] == "invalid_audio_frame"
    await ws.send(json.dumps({"type": "session.update", "pad": "x" * 1_048_576}))
    error, closed = await until_closed(ws)
    assert (error["code"], error["retryable"]) == ("message_too_large", False)
    assert closed["reason"] == "error" and ws.close_code == 1008
    kinds = [(e["kind"], e.get("detail")) for e in await events_of(emu_fast, session_id)]
    assert kinds[-1] == ("message_too_large", {"limit_bytes": 1_048_576})
    assert (await run_of(emu_fast, session_id))["metered_seconds"] == 0.0  # no media taken in


async def test_audio_faster_than_real_time_is_rate_limited() -> None:
    with EmulatorServer(EmulatorConfig(realtime_rate_slack_s=0.25)) as emu:
        async with websockets.connect(ws_url(emu, AUDIO_PATH), additional_headers=HEADERS) as ws:
            session_id = (await recv(ws))["session_id"]
            await ws.send(bytes(SECOND))  # 1 s of audio at once: the first frame is always taken
            await ws.send(bytes(SECOND))  # another second at once: 1 s ahead of the clock
            error = await recv(ws)
            assert (error["code"], error["retryable"]) == ("rate_limited", True)
            await asyncio.sleep(1.0)
            await ws.send(bytes(SECOND))  # resent after waiting: taken
            await ws.send(json.dumps({"type": "session.close"}))
            (closed,) = await until_closed(ws)
        assert closed["received"] == {"audio_duration_ms": 2_000, "frames": 2}
        assert [(e["kind"], "detail" in e) for e in await events_of(emu, session_id)] == [("rate_limited", False)]
        assert (await run_of(emu, session_id))["metered_seconds"] == 10.0


async def test_sdk_does_not_reconnect_after_a_session_ending_error(
    v1: AsyncExpressionMeasurementClient, emu_fast: EmulatorServer
) -> None:
    """The SDK's reconnect policy reads close code 1008 as "ended for good" after config_invalid."""
    seen: list[Any] = []
    async with reconnecting(v1.audio) as socket:
        with pytest.raises(ConnectionClosedError) as closed:
            async for message in socket:
                seen.append(message)
                if isinstance(message, AudioSessionCreated):
                    await socket.send_audio_frame(bytes(3_200))
                    await socket.send_audio_session_update(AudioSessionUpdate(type="session.update"))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert [type(m).__name__ for m in seen] == ["AudioSessionCreated", "Error", "AudioSessionClosed"]
    assert emu_fast.calls()[f"GET {AUDIO_PATH}"] == 1


async def end_sessions(emu: EmulatorServer, **body: Any) -> list[str]:
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{emu.base_url}/_emulator/realtime/end", json=body)
    resp.raise_for_status()
    ended: list[str] = resp.json()["ended"]
    return ended


async def test_sdk_reconnects_after_an_audio_internal_error(
    v1: AsyncExpressionMeasurementClient, emu_fast: EmulatorServer
) -> None:
    """An audio internal_error ends the session (1008); the SDK opens a new session (a new run) and sends it the
    last session.update."""
    seen: list[Any] = []
    async with reconnecting(v1.audio) as socket:
        await socket.send_audio_session_update(AudioSessionUpdate(type="session.update", measurement_timer_ms=6000))
        async for message in socket:
            seen.append(message)
            if isinstance(message, AudioSessionUpdated) and len(seen) == 2:  # the first session, configured
                assert await end_sessions(emu_fast, error="internal_error") == [seen[0].session_id]
            elif isinstance(message, AudioSessionUpdated):  # the second
                break
    names = [type(m).__name__ for m in seen]
    assert names == ["AudioSessionCreated", "AudioSessionUpdated", "Error", "AudioSessionClosed",
                     "AudioSessionCreated", "AudioSessionUpdated"]  # fmt: skip
    assert seen[2].code == "internal_error" and seen[2].retryable is False
    assert seen[5].measurement_timer_ms == 6000 and seen[4].session_id != seen[0].session_id
    first = await run_of(emu_fast, seen[0].session_id)
    assert (first["status"], first["close_code"]) == ("errored", 1008)


async def test_a_shutdown_closes_sessions_with_server_shutdown(raw: Any, emu_fast: EmulatorServer) -> None:
    audio, video = await raw(AUDIO_PATH), await raw(VIDEO_PATH)
    ids = [(await recv(audio))["session_id"], (await recv(video))["session_id"]]
    assert sorted(await end_sessions(emu_fast)) == sorted(ids)
    for ws in (audio, video):
        (closed,) = await until_closed(ws)
        assert closed["reason"] == "server_shutdown" and ws.close_code == 1001
    for run in [await run_of(emu_fast, i) for i in ids]:
        assert (run["status"], run["close_code"], run["close_reason"]) == ("ended", 1001, "server_shutdown")


async def test_the_handshake_is_authenticated(make_emulator: Any) -> None:
    emu = make_emulator(api_key="the-key")
    with pytest.raises(ApiError) as refused:
        async with v1_client(emu.cloud_url, api_key="wrong-key").audio.connect():
            pass
    assert refused.value.status_code == 401
    closed_to_v1 = make_emulator(v1_not_enabled_keys=frozenset({"not-enabled"}))
    with pytest.raises(ApiError) as forbidden:
        async with v1_client(closed_to_v1.cloud_url, api_key="not-enabled").video.connect():
            pass
    assert forbidden.value.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as no_key:
        await websockets.connect(ws_url(emu, AUDIO_PATH))
    assert no_key.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus):  # realtime is on the cloud host only
        await websockets.connect(emu.base_url.replace("http", "ws") + AUDIO_PATH, additional_headers=HEADERS)
    async with httpx.AsyncClient() as http:
        token = await http.post(
            f"{emu.base_url}/oauth2-cc/token", auth=("the-key", "secret"), data={"grant_type": "client_credentials"}
        )
    bearer = token.json()["access_token"]
    async with websockets.connect(
        ws_url(emu, AUDIO_PATH), additional_headers={"Authorization": f"Bearer {bearer}"}
    ) as ws:
        assert (await recv(ws))["type"] == "session.created"


async def test_how_the_client_left_is_recorded(raw: Any, emu_fast: EmulatorServer) -> None:
    """A client's close frame gives the run its code and text; a dropped connection reads 1011, errored."""
    polite = await raw(AUDIO_PATH)
    polite_id = (await recv(polite))["session_id"]
    await polite.close(4000, "user left")
    dropped = await raw(AUDIO_PATH)
    dropped_id = (await recv(dropped))["session_id"]
    await dropped.send(bytes(3_200))
    dropped.transport.abort()
    first, second = await ended_run(emu_fast, polite_id), await ended_run(emu_fast, dropped_id)
    assert (first["status"], first["close_code"], first["close_reason"]) == ("ended", 4000, "user left")
    assert (second["status"], second["close_code"], second["close_reason"]) == ("errored", 1011, "error")
    assert second["metered_seconds"] == 10.0 and first["metered_seconds"] == 0.0
    listed = await get(f"{emu_fast.cloud_url}/v1/expression/run", mode="realtime")
    assert {r["run_id"] for r in listed.json()["runs"]} == {polite_id, dropped_id}


async def test_an_idle_session_ends_with_idle_timeout(make_emulator: Any) -> None:
    emu = make_emulator(realtime_idle_timeout_s=0.3)
    async with websockets.connect(ws_url(emu, AUDIO_PATH), additional_headers=HEADERS) as ws:
        session_id = (await recv(ws))["session_id"]
        (closed,) = await until_closed(ws)
    assert closed["reason"] == "idle_timeout" and ws.close_code == 1000
    run = await run_of(emu, session_id)
    assert (run["status"], run["close_reason"]) == ("ended", "idle_timeout")


async def test_a_live_run_unheard_for_5_minutes_reads_errored_until_it_is_heard(
    raw: Any, emu_fast: EmulatorServer
) -> None:
    ws = await raw(AUDIO_PATH)
    session_id = (await recv(ws))["session_id"]
    run = emu_fast.app.state.emu.runs[session_id]
    run.heard_at -= 301  # five minutes and a second without a message, without waiting for them
    quiet = await run_of(emu_fast, session_id)
    assert quiet["status"] == "errored" and quiet["ended_at"] is not None
    await ws.send(bytes(3_200))
    await ws.send(json.dumps({"type": "bogus"}))  # answered, so the frame before it was handled
    await recv(ws)
    assert (await run_of(emu_fast, session_id))["status"] == "live"


# Video


async def test_video_frames_each_get_one_reply_in_order(
    v1: AsyncExpressionMeasurementClient, emu_fast: EmulatorServer
) -> None:
    """Results equal an upload's of the accepted frames; frame_id counts results only; received counts frames
    accepted for measurement, produced counts measured faces; 1/3 s billed per frame taken in, live."""
    faces = [jpeg_with_faces("faces=1", width=640, height=480), jpeg_with_faces("faces=3", width=640, height=480)]
    frames = [faces[0], b"\x89PNG\r\n\x1a\n", faces[1], jpeg_with_faces("fail"), faces[1]]
    replies: list[Any] = []
    async with v1.video.connect() as socket:
        created = await socket.recv()
        assert isinstance(created, VideoSessionCreated)
        assert (created.image.type, created.face.threshold, created.face.min_size) == ("image/jpeg", 0.9, 60)
        for frame in frames:
            await socket.send_image_frame(frame)
            replies.append(await socket.recv())
        live = await run_of(emu_fast, created.session_id)
        assert (live["status"], live["metered_seconds"]) == ("live", round(5 / 3, 3))
        await socket.send_video_session_close(SessionClose(type="session.close"))
        closed = await socket.recv()
    upload = await v1.video.measure(file=[("a.jpg", f, "image/jpeg") for f in (faces[0], faces[1], faces[1])])
    results = [r for r in replies if isinstance(r, VideoMeasurementResult)]
    assert [r.frame_id for r in results] == [0, 1, 2]
    assert [r.model_dump(exclude={"type"}) for r in results] == [m.model_dump() for m in upload.measurements]
    errors = [(type(r).__name__, getattr(r, "code", None), getattr(r, "retryable", None)) for r in replies]
    assert errors[1] == ("Error", "invalid_image_frame", True)
    assert errors[3] == ("Error", "internal_error", True)
    assert isinstance(closed, VideoSessionClosed) and closed.reason == "client_request"
    assert closed.received.frames == 4  # the PNG was rejected before detection; the failed frame counts
    assert closed.produced.measurements == 1 + 2 + 2  # measured faces (2 of 3 measured), not messages
    run = await run_of(emu_fast, created.session_id)
    assert (run["status"], run["metered_seconds"], run["close_code"]) == ("ended", 10.0, 1000)
    kinds = [e["kind"] for e in await events_of(emu_fast, created.session_id)]
    assert kinds == ["invalid_image_frame", "inference_failed"]


async def test_video_session_update_and_limits(v1: AsyncExpressionMeasurementClient, raw: Any) -> None:
    async with v1.video.connect() as socket:
        await socket.recv()
        await socket.send_video_session_update(
            VideoSessionUpdate(type="session.update", face=FaceConfigUpdate(min_size=20))
        )
        updated = await socket.recv()
        assert isinstance(updated, VideoSessionUpdated)
        assert (updated.face.threshold, updated.face.min_size, updated.image.type) == (0.9, 20, "image/jpeg")
    ws = await raw(VIDEO_PATH)
    await recv(ws)
    await ws.send(padded_jpeg(2_000_001))
    error, closed = await until_closed(ws)
    assert (error["code"], error["retryable"], closed["reason"], ws.close_code) == (
        "message_too_large", False, "error", 1008)  # fmt: skip
    png = await raw(VIDEO_PATH)
    await recv(png)
    await png.send(json.dumps({"type": "session.update", "image": {"type": "image/png"}}))
    error, _ = await until_closed(png)
    assert error["code"] == "config_invalid" and png.close_code == 1008


async def test_five_measurement_failures_in_a_row_end_a_video_session(raw: Any, emu_fast: EmulatorServer) -> None:
    ws = await raw(VIDEO_PATH)
    session_id = (await recv(ws))["session_id"]
    failing, good = jpeg_with_faces("fail"), jpeg_with_faces("faces=1")
    for frame in (failing, failing, good, failing, failing, failing, failing):
        await ws.send(frame)
        reply = await recv(ws)
        assert reply["type"] == ("measurement.result" if frame is good else "error")
    await ws.send(failing)
    error, closed = await until_closed(ws)
    assert (error["code"], error["retryable"], closed["reason"], ws.close_code) == (
        "internal_error", False, "error", 1008)  # fmt: skip
    failures = [e["detail"]["consecutive"] for e in await events_of(emu_fast, session_id)]
    assert failures == [1, 2, 1, 2, 3, 4, 5]


async def test_video_faster_than_3_frames_per_second_is_rate_limited() -> None:
    with EmulatorServer(EmulatorConfig(realtime_rate_slack_s=0)) as emu:
        async with websockets.connect(ws_url(emu, VIDEO_PATH), additional_headers=HEADERS) as ws:
            session_id = (await recv(ws))["session_id"]
            codes = []
            for _ in range(3):  # at once: the second and third are within 1/3 s of the first
                await ws.send(jpeg_with_faces("faces=1"))
            for _ in range(3):
                reply = await recv(ws)
                codes.append(reply.get("code", reply["type"]))
            await asyncio.sleep(0.4)
            await ws.send(jpeg_with_faces("faces=1"))
            codes.append((await recv(ws))["type"])
            await ws.send(json.dumps({"type": "session.close"}))
            (closed,) = await until_closed(ws)
        assert codes == ["measurement.result", "rate_limited", "rate_limited", "measurement.result"]
        assert closed["received"] == {"frames": 2}
        assert [e["kind"] for e in await events_of(emu, session_id)] == ["rate_limited"] * 2


def test_cli_sets_the_realtime_knobs() -> None:
    config = config_from_args(build_parser().parse_args(["--realtime-rate-slack", "0", "--realtime-idle-timeout", "5"]))
    assert (config.realtime_rate_slack_s, config.realtime_idle_timeout_s) == (0.0, 5.0)
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.realtime_rate_slack_s, defaults.realtime_idle_timeout_s) == (1.0, 60.0)
    for bad in (["--realtime-idle-timeout", "0"], ["--realtime-rate-slack", "-1"], ["--realtime-rate-slack", "nan"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)
