"""Fixtures for the emulator suite: a running emulator, SDK clients, and an HTTP receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from hume import AsyncHumeClient, HumeClient

from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorServer

API_KEY = "test-api-key"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A tiny local HTTP server that records POSTs and answers with scripted statuses."""

    url: str
    received: list[Received] = field(default_factory=list)
    # Statuses to answer in order; once exhausted, 200.
    script: list[int] = field(default_factory=list)
    # Seconds to stall before answering, per request in order (to provoke timeouts).
    stalls: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                stall = state.stalls.pop(0) if state.stalls else 0.0
                status = state.script.pop(0) if state.script else 200
            if stall:
                time.sleep(stall)
            with state.lock:
                state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., EmulatorServer]]:
    """Start an emulator with a custom config; stopped at test end."""
    started: list[EmulatorServer] = []

    def make(**kwargs: Any) -> EmulatorServer:
        kwargs.setdefault("callback_backoff_s", 0.02)
        server = EmulatorServer(EmulatorConfig(**kwargs)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[EmulatorServer]:
    """One default emulator for the whole session (each stop costs uvicorn ~0.15 s)."""
    with EmulatorServer(EmulatorConfig(callback_backoff_s=0.02)) as server:
        yield server


@pytest.fixture
def emu(shared_emulator: EmulatorServer) -> EmulatorServer:
    """The shared default emulator, reset so every test starts from nothing."""
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture
def client(emu: EmulatorServer) -> HumeClient:
    return HumeClient(api_key=API_KEY, base_url=emu.base_url)


@pytest.fixture
def async_client(emu: EmulatorServer) -> AsyncHumeClient:
    return AsyncHumeClient(api_key=API_KEY, base_url=emu.base_url)
