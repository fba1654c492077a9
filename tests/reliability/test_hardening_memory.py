"""Issue 11, finding 1 (memory) and the hang-up part of 6, measured on `python -m app serve` in a
subprocess: unauthenticated webhook posts do not grow the server's memory, and a client hanging up
mid-body is a quiet 400 in the log, not a 500 with a traceback. Loopback only, bounded bodies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import hume_environment

ROOT = Path(__file__).resolve().parents[2]
BODY_MB = 64
POSTS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(database_url: str, emulator: EmulatorServer) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, **hume_environment(emulator),
        "PORT": str(port), "LOG_LEVEL": "INFO", "LOG_FORMAT": "console", "RUN_WORKER": "false",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError("server did not start")
        time.sleep(0.1)
    try:
        yield process, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _post_chunked(url: str) -> None:
    def body() -> Iterator[bytes]:
        chunk = b"[" * (1 << 20)
        for _ in range(BODY_MB):
            yield chunk

    try:
        httpx.post(url, content=body(), timeout=60)
    except httpx.HTTPError:
        pass  # the server answered and closed without reading: exactly the point


def test_unauthenticated_webhook_posts_do_not_grow_memory(server: tuple[subprocess.Popen[bytes], str]) -> None:
    """Four chunked 64 MiB posts to the batch route with a random job id and two to the EVI route without a
    signature: before, each was read whole before its 404/401 (the server grew by the bodies' size); now
    they are refused unread and the server grows by less than 40 MB."""
    process, url = server
    before = _rss_mb(process.pid)
    peak = before
    targets = [f"{url}/v1/webhooks/hume/batch?job_id={uuid.uuid4()}&token=x" for _ in range(POSTS)]
    targets += [f"{url}/v1/webhooks/hume/evi"] * 2
    threads = [threading.Thread(target=_post_chunked, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _rss_mb(process.pid))
        time.sleep(0.02)
    assert peak - before < 40, f"RSS {before:.0f} MB -> {peak:.0f} MB"


def test_client_hanging_up_mid_body_is_a_quiet_400(server: tuple[subprocess.Popen[bytes], str]) -> None:
    process, url = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/webhooks/hume/evi HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                     b"X-Hume-AI-Webhook-Signature: " + b"0" * 64 + b"\r\n"
                     b"X-Hume-AI-Webhook-Timestamp: " + str(int(time.time())).encode() + b"\r\n\r\n{")  # fmt: skip
        time.sleep(0.3)
    time.sleep(0.5)
    process.terminate()
    output = process.communicate(timeout=15)[0].decode(errors="replace")
    assert "status=400" in output, output[-2000:]
    assert "Traceback" not in output and "unhandled error" not in output, output[-2000:]
