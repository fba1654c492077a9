"""POST /v1/tts over real sockets: the real SDK against the emulator, the cache in real Postgres."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from app.emulator.testing import EmulatorServer
from tests.conftest import Service, ServiceFactory, create_key
from tests.reliability.helpers import wait_until

JSON_CALL = "POST /v0/tts"
STREAM_CALL = "POST /v0/tts/stream/file"


def hume_calls(emulator: EmulatorServer, call: str = JSON_CALL) -> int:
    return emulator.calls().get(call, 0)


def test_miss_then_hit_serves_the_same_audio(service: Service, emulator: EmulatorServer) -> None:
    """The first request synthesizes (X-Cache: miss); the same request again is served from the cache
    byte for byte without calling Hume, and so is the same request written differently."""
    with service.client() as client:
        first = client.post("/v1/tts", json={"text": "Hello there, how are you?", "format": "wav"})
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "audio/wav"
        assert first.headers["x-cache"] == "miss"
        assert first.content[:4] == b"RIFF"
        second = client.post("/v1/tts", json={"text": "Hello there, how are you?", "format": "wav"})
        # Same request after normalization: trimmed text, explicit defaults.
        third = client.post(
            "/v1/tts", json={"text": "  Hello there, how are you?\n", "format": "wav", "speed": 1, "stream": False}
        )
    assert second.headers["x-cache"] == "hit"
    assert second.content == first.content
    assert third.headers["x-cache"] == "hit"
    assert third.content == first.content
    assert hume_calls(emulator) == 1


@pytest.mark.parametrize(("fmt", "content_type"), [("mp3", "audio/mpeg"), ("wav", "audio/wav"), ("pcm", "audio/pcm")])
def test_each_format_has_its_content_type(service: Service, fmt: str, content_type: str) -> None:
    """Every format comes back with its Content-Type and real audio bytes."""
    with service.client() as client:
        response = client.post("/v1/tts", json={"text": "Format check.", "format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert len(response.content) > 1000
    if fmt == "mp3":
        assert response.content[:2] == b"\xff\xfb"


def test_request_fields_change_the_cache_key(service: Service, emulator: EmulatorServer) -> None:
    """Voice, description, speed and format each make a different entry (no wrong audio served)."""
    base: dict[str, Any] = {"text": "Same words."}
    variants = [
        base,
        {**base, "description": "a calm narrator"},
        {**base, "voice": {"name": "Ava Song", "provider": "HUME_AI"}},
        {**base, "voice": {"name": "Ava Song"}},
        {**base, "voice": {"id": "Ava Song"}},
        {**base, "speed": 1.5},
        {**base, "format": "wav"},
    ]
    with service.client() as client:
        caches = [client.post("/v1/tts", json=v).headers["x-cache"] for v in variants]
        repeat = [client.post("/v1/tts", json=v).headers["x-cache"] for v in variants]
    assert caches == ["miss"] * len(variants)
    assert repeat == ["hit"] * len(variants)
    assert hume_calls(emulator) == len(variants)


def test_json_format_returns_humes_document(service: Service, emulator: EmulatorServer) -> None:
    """?format=json answers Hume's JSON with base64 audio, cached like audio."""
    body = {"text": "Give me JSON.", "format": "wav"}
    with service.client() as client:
        first = client.post("/v1/tts", params={"format": "json"}, json=body)
        second = client.post("/v1/tts", params={"format": "json"}, json=body)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    document = first.json()
    generation = document["generations"][0]
    assert generation["encoding"]["format"] == "wav"
    assert base64.b64decode(generation["audio"])[:4] == b"RIFF"
    assert second.json() == document
    assert hume_calls(emulator) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 42}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "hi", "description": "d" * 1001}, "description"),
        ({"text": "hi", "voice": "Ava"}, "voice"),
        ({"text": "hi", "voice": {}}, "voice"),
        ({"text": "hi", "voice": {"id": "a", "name": "b"}}, "voice"),
        ({"text": "hi", "voice": {"name": ""}}, "voice.name"),
        ({"text": "hi", "voice": {"name": "Ava", "provider": "OTHER"}}, "voice.provider"),
        ({"text": "hi", "speed": 0.49}, "speed"),
        ({"text": "hi", "speed": 2.01}, "speed"),
        ({"text": "hi", "speed": "fast"}, "speed"),
        ({"text": "hi", "speed": True}, "speed"),
        ({"text": "hi", "format": "ogg"}, "format"),
        ({"text": "hi", "stream": "yes"}, "stream"),
        ({"text": "hi", "volume": 11}, "volume"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(
    service: Service, emulator: EmulatorServer, body: dict[str, Any], field: str
) -> None:
    """Bad input is a 422 that names the field, and never reaches Hume."""
    with service.client() as client:
        response = client.post("/v1/tts", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == field
    assert hume_calls(emulator) == 0


def test_malformed_bodies_and_limits(service: Service) -> None:
    """Non-JSON, non-object and oversized bodies are clear 4xx errors; the longest valid text works."""
    with service.client() as client:
        assert client.post("/v1/tts", content=b"{not json").status_code == 422
        assert client.post("/v1/tts", json=["text"]).status_code == 422
        assert client.post("/v1/tts", content=b"x" * (2 << 20)).status_code == 413
        assert client.post("/v1/tts", params={"format": "xml"}, json={"text": "hi"}).status_code == 422
        longest = client.post("/v1/tts", json={"text": "word " * 999 + "end.", "format": "mp3"})
    assert longest.status_code == 200, longest.text


def test_tts_needs_the_tts_scope(service: Service) -> None:
    """No key is 401; a key without the tts scope is 403."""
    assert httpx.post(f"{service.url}/v1/tts", json={"text": "hi"}).status_code == 401
    reader = create_key(service.database_url, ["read"])
    with service.client(reader) as client:
        assert client.post("/v1/tts", json={"text": "hi"}).status_code == 403
        assert client.get("/v1/tts/cache/stats").status_code == 403


def _burst(service: Service, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {service.key}"}
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=service.url, headers=headers, limits=limits, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/tts", json=b) for b in bodies))

    return asyncio.run(run())


def test_identical_concurrent_requests_make_one_hume_call(service: Service, emulator: EmulatorServer) -> None:
    """50 identical requests at once share one synthesis; two different texts make two."""
    emulator.set_faults(path="/v0/tts", delay_s=0.5)
    responses = _burst(service, [{"text": "Everyone at once."}] * 50 + [{"text": "Someone else."}] * 10)
    assert [r.status_code for r in responses] == [200] * 60
    assert len({r.content for r in responses[:50]}) == 1
    assert len({r.content for r in responses[50:]}) == 1
    assert responses[0].content != responses[50].content
    assert hume_calls(emulator) == 2
    with service.client() as client:
        stats = client.get("/v1/tts/cache/stats").json()
    assert stats["entries"] == 2
    assert stats["process"]["upstream_calls"] == 2
    assert stats["process"]["coalesced"] == 58


def test_stream_is_chunked_and_fills_the_cache(service: Service, emulator: EmulatorServer) -> None:
    """stream: true pipes Hume's streaming endpoint through chunked; the result is then cached for both
    streamed and plain requests."""
    body = {"text": "A longer sentence to stream. " * 6, "format": "pcm", "stream": True}
    with service.client() as client, client.stream("POST", "/v1/tts", json=body) as response:
        assert response.status_code == 200
        assert response.headers["x-cache"] == "miss"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-type"] == "audio/pcm"
        pieces = list(response.iter_raw())
    streamed = b"".join(pieces)
    assert len(pieces) > 1
    assert hume_calls(emulator, STREAM_CALL) == 1
    with service.client() as client:
        plain = client.post("/v1/tts", json={**body, "stream": False})
        again = client.post("/v1/tts", json=body)
    assert plain.headers["x-cache"] == "hit"
    assert plain.content == streamed
    assert again.headers["x-cache"] == "hit"
    assert hume_calls(emulator, STREAM_CALL) + hume_calls(emulator) == 1


def test_concurrent_streams_share_one_hume_stream(service: Service, emulator: EmulatorServer) -> None:
    """Identical streamed requests in flight together read one Hume stream and get identical audio."""
    emulator.set_faults(path="/v0/tts/stream/file", delay_s=0.5)
    responses = _burst(service, [{"text": "Streaming together.", "format": "wav", "stream": True}] * 20)
    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.content for r in responses}) == 1
    assert responses[0].content[:4] == b"RIFF"
    assert hume_calls(emulator, STREAM_CALL) == 1


def test_hume_400_is_422_with_humes_message(service: Service, emulator: EmulatorServer) -> None:
    """Hume's own rejection reaches the caller as a 422 with Hume's words, and nothing is cached."""
    emulator.set_faults(
        path="/v0/tts", status=400, times=1, body={"error": "Bad Request", "message": "Voice 'Nobody' not found."}
    )
    with service.client() as client:
        response = client.post("/v1/tts", json={"text": "hi", "voice": {"name": "Nobody"}})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "hume_rejected"
        assert "Voice 'Nobody' not found." in error["message"]
        retry = client.post("/v1/tts", json={"text": "hi", "voice": {"name": "Nobody"}})
    assert retry.headers["x-cache"] == "miss"


def test_hume_422_detail_is_reported(service: Service, emulator: EmulatorServer) -> None:
    """Hume's validation detail (loc and msg) is turned into a readable 422 message."""
    detail = [{"loc": ["body", "utterances", 0, "text"], "msg": "Text contains unsupported characters", "type": "x"}]
    emulator.set_faults(path="/v0/tts", status=422, times=1, body={"detail": detail})
    with service.client() as client:
        response = client.post("/v1/tts", json={"text": "hi"})
    assert response.status_code == 422
    assert "utterances.0.text: Text contains unsupported characters" in response.json()["error"]["message"]


def test_rate_limit_is_retried_then_succeeds(service: Service, emulator: EmulatorServer) -> None:
    """Two 429s from Hume are retried (honouring Retry-After); the caller just gets the audio."""
    emulator.set_faults(path="/v0/tts", status=429, times=2, retry_after=1)
    with service.client() as client:
        response = client.post("/v1/tts", json={"text": "Patience."})
    assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "miss"
    assert hume_calls(emulator) == 3


@pytest.mark.slow
def test_persistent_rate_limit_is_503_with_retry_after(service: Service, emulator: EmulatorServer) -> None:
    """If Hume keeps answering 429 after every retry, the caller gets 503 with Retry-After."""
    emulator.set_faults(path="/v0/tts", status=429, retry_after=1)
    with service.client() as client:
        response = client.post("/v1/tts", json={"text": "Busy."})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "hume_busy"
    assert response.headers["retry-after"] == "1"
    assert hume_calls(emulator) == 6  # SDK: 3 attempts, twice


@pytest.mark.slow
def test_persistent_server_error_is_503_with_retry_after(service: Service, emulator: EmulatorServer) -> None:
    """Hume 5xx after every retry is a 503 with Retry-After (the same request may work later, as for every
    route); a streamed request fails the same way."""
    emulator.set_faults(path="/v0/tts*", status=503, retry_after=1)
    with service.client() as client:
        response = client.post("/v1/tts", json={"text": "Down."})
        streamed = client.post("/v1/tts", json={"text": "Down.", "stream": True})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "hume_unavailable"
    assert response.headers["retry-after"] == "1"
    assert streamed.status_code == 503
    assert streamed.headers["retry-after"] == "1"


def test_cache_evicts_least_recently_used(make_service: ServiceFactory, emulator: EmulatorServer) -> None:
    """With room for two entries, a third evicts the one used least recently; stats show the bound."""
    # 15 characters of text at 15 chars/s is one second of 48 kHz s16 PCM in the emulator: 96,000 bytes.
    service = make_service(tts_cache_max_bytes=200_000)
    a, b, c = ({"text": f"Entry {n} is here", "format": "pcm"} for n in "abc")
    with service.client() as client:
        sizes = [len(client.post("/v1/tts", json=x).content) for x in (a, b)]
        assert sizes == [96_000, 96_000]
        assert client.post("/v1/tts", json=a).headers["x-cache"] == "hit"  # a is now the most recent
        # A hit's use is written just after its answer: wait for it, as any later request would in practice.
        wait_until(lambda: client.get("/v1/tts/cache/stats").json()["hits"] == 1, 5, "the hit to be counted")
        assert client.post("/v1/tts", json=c).headers["x-cache"] == "miss"  # evicts b
        stats = client.get("/v1/tts/cache/stats").json()
        assert stats["entries"] == 2
        assert stats["bytes"] == 192_000 <= stats["max_bytes"] == 200_000
        assert stats["process"]["evictions"] == 1
        assert client.post("/v1/tts", json=a).headers["x-cache"] == "hit"
        assert client.post("/v1/tts", json=c).headers["x-cache"] == "hit"
        assert client.post("/v1/tts", json=b).headers["x-cache"] == "miss"


class SlowStreamingHume:
    """A stand-in for Hume's /v0/tts/stream/file that sends one chunk, then holds the rest until released.

    The emulator streams everything at once, so it cannot show whether we forward bytes as they come.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

        async def stream_file(request: Request) -> StreamingResponse:
            self.calls += 1

            async def body() -> AsyncIterator[bytes]:
                yield b"\xff\xfb" + b"first" * 200
                await asyncio.to_thread(self.release.wait, 20)  # released by the test (or after 20 s)
                yield b"rest" * 200

            return StreamingResponse(body(), media_type="audio/mpeg")

        app = Starlette(routes=[Route("/v0/tts/stream/file", stream_file, methods=["POST"])])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> SlowStreamingHume:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def test_stream_forwards_bytes_before_hume_finishes(make_service: ServiceFactory) -> None:
    """The caller receives the first audio bytes while Hume is still synthesizing the rest."""
    with SlowStreamingHume() as hume:
        service = make_service(hume_voice_url=hume.base_url)
        body = {"text": "Stream me as you go.", "stream": True}
        started = time.monotonic()
        with service.client() as client, client.stream("POST", "/v1/tts", json=body) as response:
            assert response.status_code == 200
            assert response.headers["x-cache"] == "miss"
            chunks = response.iter_raw()
            first = next(chunks)
            # Hume holds the rest for up to 20 s: a service that buffered would take that long.
            assert time.monotonic() - started < 5
            assert first.startswith(b"\xff\xfb")
            hume.release.set()
            audio = first + b"".join(chunks)
    assert audio.endswith(b"rest")


def test_client_hanging_up_mid_stream_still_fills_the_cache(make_service: ServiceFactory) -> None:
    """A listener that disconnects after the first bytes does not waste the synthesis: it finishes and the
    next identical request is a cache hit with the whole audio."""
    with SlowStreamingHume() as hume:
        service = make_service(hume_voice_url=hume.base_url)
        body = {"text": "Hang up on me.", "stream": True}
        with service.client() as client:
            with client.stream("POST", "/v1/tts", json=body) as response:
                assert next(response.iter_raw()).startswith(b"\xff\xfb")
            # The response is closed before Hume sent the rest; now Hume finishes.
            hume.release.set()
            deadline = time.monotonic() + 10
            while True:
                again = client.post("/v1/tts", json=body)
                if again.headers["x-cache"] == "hit" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert again.headers["x-cache"] == "hit"
        assert again.content.endswith(b"rest" * 200)
        assert hume.calls == 1  # the abandoned synthesis was the one stored
