"""Run the emulator for tests and benchmarks: in-process (``with EmulatorServer(EmulatorConfig()) as emu``),
or as ``python -m app emulator`` in a process of its own (``EmulatorProcess``), both driven over HTTP."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from .config import EmulatorConfig
from .server import create_app


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 just now (held open together, so they differ)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class EmulatorControl:
    """The emulator's control routes (`/_emulator/...`) over plain HTTP, so they work the same from any
    thread, loop or process, for an emulator at `base_url`."""

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    @property
    def cloud_url(self) -> str:
        raise NotImplementedError

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        resp = httpx.request(method, f"{self.base_url}/_emulator/{path}", json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def calls(self) -> dict[str, int]:
        """Requests received per "METHOD /path/{template}" since start or the last reset."""
        result: dict[str, int] = self._control("GET", "calls")["calls"]
        return result

    def set_faults(self, *specs: dict[str, Any], **spec: Any) -> dict[str, Any]:
        """Add fault rules, e.g. ``set_faults(path="/v0/batch/jobs", status=429, times=2, retry_after=1)``."""
        payload = [*specs, spec] if spec else list(specs)
        result: dict[str, Any] = self._control("POST", "faults", payload)
        return result

    def reset(self) -> None:
        """Forget jobs, chats, calls, deliveries and faults."""
        self._control("POST", "reset")

    def deliveries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Outgoing callback/webhook attempts (``kind``: batch_callback, evi_webhook)."""
        suffix = f"deliveries?kind={kind}" if kind else "deliveries"
        result: list[dict[str, Any]] = self._control("GET", suffix)["deliveries"]
        return result

    def create_chat(self, **spec: Any) -> dict[str, Any]:
        """Simulate an EVI chat (and send its webhooks); see ``POST /_emulator/evi/chats``."""
        result: dict[str, Any] = self._control("POST", "evi/chats", spec)
        return result


class EmulatorServer(EmulatorControl):
    """The emulator under uvicorn in a background thread (with its own event loop) on a free port.

    Works from sync and asyncio code alike: the caller only talks HTTP to ``base_url``.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", *, one_origin: bool = False
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.one_origin = one_origin
        self.app = create_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socks: list[socket.socket] = []
        self.port = 0
        self.cloud_port = 0

    @property
    def base_url(self) -> str:
        """The stand-in for `https://api.hume.ai` (tokens, TTS, EVI, batch) and the control routes."""
        return f"http://{self.host}:{self.port}"

    @property
    def cloud_url(self) -> str:
        """The stand-in for `https://api.cloud.hume.ai` (v1); with `one_origin`, the same as `base_url`."""
        return f"http://{self.host}:{self.cloud_port}"

    def _bind(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._socks.append(sock)
        port: int = sock.getsockname()[1]
        return port

    def start(self) -> EmulatorServer:
        self.port = self._bind()
        self.cloud_port = self.port if self.one_origin else self._bind()
        if not self.one_origin:
            state = self.app.state.emu
            state.origins.update({(self.host, self.port): "voice", (self.host, self.cloud_port): "cloud"})
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
            # The event loop is uvicorn's default; no signal handlers off the main thread.
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": self._socks}, daemon=True, name=f"hume-emulator-{self.port}"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("emulator failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        for sock in self._socks:
            sock.close()
        self._socks = []
        self._server = self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmulatorServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


class EmulatorProcess(EmulatorControl):
    """``python -m app emulator`` in a process of its own: a benchmark's server never shares the measuring
    process (its CPU and GIL would be counted against whatever the benchmark times)."""

    def __init__(
        self, *, api_key: str | None = None, evi_signing_key: str | None = None, requests_per_minute: int = 0
    ) -> None:
        # requests_per_minute 0: no rate limit, so a benchmark measures the service, not Hume's 600/min.
        self.options = {"--api-key": api_key, "--evi-signing-key": evi_signing_key,
                        "--requests-per-minute": str(requests_per_minute)}  # fmt: skip
        self.port = 0
        self.cloud_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cloud_url(self) -> str:
        return f"http://127.0.0.1:{self.cloud_port}"

    def start(self) -> EmulatorProcess:
        self.port, self.cloud_port = free_ports(2)
        argv = [sys.executable, "-m", "app", "emulator", "--port", str(self.port), "--cloud-port", str(self.cloud_port),
                "--log-level", "warning"]  # fmt: skip
        argv += [part for flag, value in self.options.items() if value is not None for part in (flag, value)]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)  # noqa: S603 (our interpreter and module)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.calls()
                return self
            except httpx.TransportError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the emulator process did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
