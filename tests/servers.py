"""Run the service under uvicorn on a free port in a background thread, as production runs it."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from app.config import Settings
from app.web.application import create_app
from app.web.wire_limits import uvicorn_options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bind() -> socket.socket:
    """A listening-ready socket on a free port."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and without
    # it every keep-alive response waits ~40 ms for a delayed ACK (Nagle between headers and body).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServiceServer:
    def __init__(self, settings: Settings, sock: socket.socket | None = None) -> None:
        # `sock`: bound beforehand (see `bind`) when something started earlier must know our URL.
        self.sock = sock or bind()
        self.port = int(self.sock.getsockname()[1])
        self.settings = settings.replace(port=self.port, public_base_url=settings.public_base_url or self.url)
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.settings),
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=5,
                **uvicorn_options(self.settings),
            )
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServiceServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("service failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("service did not start within 20 s")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()
