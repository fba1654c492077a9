"""Issue 11, findings 1, 4, 6 (webhooks), 10 and 11: webhooks authenticate before reading, slow senders are
cut off, an over-cap genuine callback completes its job at once, an unknown EVI event creates no job."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from typing import Any

import orjson
import psycopg
import pytest

from app.batch.submission import token_hash
from app.hume.signatures import signed_headers
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory
from tests.e2e.test_spine import wait_for_status

URL = "https://example.com/clip.mp4#duration=4"
HUGE = 100 << 20  # declared, never sent


def _raw(service: Service, head: str, body: bytes = b"", *, wait_s: float = 3.0) -> tuple[bytes, float]:
    """Send a request head and part of a body over a socket; return what the server answered within
    `wait_s` (b"" if nothing) and how long the answer took."""
    host, port = service.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(head.encode() + body)
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            answer = b""
    return answer, time.monotonic() - started


def _post_head(path: str, length: int, extra: dict[str, str] | None = None) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_batch_callback_with_a_wrong_job_or_token_is_refused_before_the_body(service: Service) -> None:
    """a stranger's callback (random job id) declaring 100 MB is answered 404 after a few bytes,
    with the connection closed: it costs no memory and no waiting for the body."""
    path = f"/v1/webhooks/hume/batch?job_id={uuid.uuid4()}&token=x"
    answer, took = _raw(service, _post_head(path, HUGE), b"{" * 1000)
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
    assert b"connection: close" in answer.lower() and took < 2.5


def test_evi_webhook_without_fresh_signature_headers_is_refused_before_the_body(service: Service) -> None:
    """EVI: no signature headers, 100 MB declared: 401 at once. Signed headers but a body over
    the EVI cap: 413 at once."""
    answer, took = _raw(service, _post_head("/v1/webhooks/hume/evi", HUGE), b"{" * 1000)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert took < 2.5
    headers = signed_headers(b"{}", EMULATOR_KEY, now=time.time())
    answer, took = _raw(service, _post_head("/v1/webhooks/hume/evi", 2 << 20, headers), b"{" * 1000)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_slow_body_is_cut_off(make_service: ServiceFactory) -> None:
    """a body that does not arrive within BODY_READ_TIMEOUT_S is answered 408 and the connection
    closed (before: held open for as long as the sender trickled)."""
    service = make_service(body_read_timeout_s=1.0)
    head = _post_head("/v1/jobs", 1000, {"Authorization": f"Bearer {service.key}"})
    answer, took = _raw(service, head, b'{"urls": [', wait_s=5)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 0.9 < took < 4


def test_slow_headers_are_cut_off(make_service: ServiceFactory) -> None:
    """a connection whose headers are not complete within HEADER_READ_TIMEOUT_S is closed."""
    service = make_service(header_read_timeout_s=1.0)
    host, port = service.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert sock.recv(1024) == b""  # closed by the server, not timed out here
    assert time.monotonic() - started < 4


def test_slow_headers_on_a_kept_alive_connection_are_cut_off_counting_from_the_last_response(
    make_service: ServiceFactory,
) -> None:
    """The header deadline restarts when a response ends: a client that waits before its first request
    still gets the whole HEADER_READ_TIMEOUT_S for the next one, and no more."""
    service = make_service(header_read_timeout_s=1.0)
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        time.sleep(0.7)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):  # the head and the JSON body may come in separate reads
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert sock.recv(1024) == b""  # closed by the server, not timed out here
        closed = time.monotonic() - answered
    assert 0.9 < closed < 3, closed


def test_headers_over_64_kib_are_refused_with_431(service: Service) -> None:
    """A request head over 64 KiB (llhttp has no cap of its own) is answered 431 naming the limit and the
    connection closed, whether it arrives in one piece or keeps growing; a head just under it is served."""
    host, port = service.url.removeprefix("http://").split(":")
    under = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + "a" * 65_000 + "\r\n\r\n"
    answer, _ = _raw(service, under)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    whole = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + "a" * 66_000 + "\r\n\r\n"
    answer, _ = _raw(service, whole)
    assert answer.startswith(b"HTTP/1.1 431") and b"headers_too_large" in answer, answer[:200]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        sent, answer = 0, b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 1 << 20:  # a header that never ends (the kernel may take all of it before the refusal)
                sock.sendall(b"a" * 4096)
                sent += 4096
        # The server closed with our bytes unread, so a reset follows its answer.
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


def test_oversized_genuine_callback_is_acknowledged_and_its_job_completes(make_service: ServiceFactory) -> None:
    """a genuine callback over MAX_WEBHOOK_BODY_BYTES is acknowledged (202) and its predictions
    fetched from Hume's API at once; before, 413 left the job waiting for the reconciler (minutes)."""
    service = make_service(max_webhook_body_bytes=200, reconcile_after_s=3600)
    with service.client() as client:
        job = client.post("/v1/jobs", json={"urls": [URL]}).json()
        done = wait_for_status(client, job["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["num_predictions"] > 0


def _job_with_token(service: Service, token: str) -> str:
    with service.client() as client:
        job_id = str(client.post("/v1/jobs", json={"urls": [URL]}).json()["id"])
    with psycopg.connect(service.database_url) as conn:
        conn.execute(
            "UPDATE job SET callback_token_hash = %s, status = 'in_progress', hume_job_id = NULL WHERE id = %s",
            (token_hash(token), job_id),
        )
    return job_id


def test_batch_callback_nested_deep_with_a_valid_token_is_400(make_service: ServiceFactory) -> None:
    """a callback nested 5000 levels with a valid token is a 400, not a RecursionError 500."""
    service = make_service(run_worker=False)
    job_id = _job_with_token(service, "secret")
    import httpx

    body = b'{"job_id": "h", "status": "COMPLETED", "predictions": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = httpx.post(f"{service.url}/v1/webhooks/hume/batch?job_id={job_id}&token=secret", content=body)
    assert answer.status_code == 400, answer.text
    # Refused before anything was kept: no inbox event, no prediction, the job unmoved.
    with psycopg.connect(service.database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM inbox_event), (SELECT count(*) FROM prediction),"
            " (SELECT status FROM job WHERE id = %s)",
            (job_id,),
        ).fetchone()
    assert counts == (0, 0, "in_progress")


def _post_evi(service: Service, payload: dict[str, Any]) -> int:
    import httpx

    body = orjson.dumps(payload)
    headers = signed_headers(body, EMULATOR_KEY, now=time.time())
    return httpx.post(service.url + "/v1/webhooks/hume/evi", content=body, headers=headers).status_code


def _count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_unknown_evi_event_is_stored_without_creating_a_job(service: Service) -> None:
    """a signed event with an unknown name is acknowledged and kept, but creates no evi_chat job
    that would stay in_progress forever."""
    status = _post_evi(service, {"event_name": "chat_paused", "chat_id": "c1", "chat_group_id": "g"})
    assert status == 202
    assert _count(service.database_url, "SELECT count(*) FROM job WHERE kind = 'evi_chat'") == 0
    assert _count(service.database_url, "SELECT count(*) FROM inbox_event WHERE provider = 'hume_evi'") == 1


@pytest.mark.parametrize("field", ["chat_id", "caller_number"])
def test_signed_evi_event_with_nul_is_422(service: Service, field: str) -> None:
    """NUL in chat_id (was a 500) or caller_number (was accepted, then died after 8 tries) is a
    422 and stores nothing."""
    payload = {"event_name": "chat_started", "chat_group_id": "g", "chat_id": "c", "start_time": 1,
               "chat_start_type": "new_chat_group", "caller_number": "+1"}  # fmt: skip
    payload[field] = "bad\x00value"
    assert _post_evi(service, payload) == 422
    assert _count(service.database_url, "SELECT count(*) FROM inbox_event") == 0
