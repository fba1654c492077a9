"""Serve any ASGI app under uvicorn on a real socket in a background thread, for tests that need a remote end."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from tests.servers import bind


@contextlib.contextmanager
def serve(app: ASGIApp, *, certfile: str | None = None, keyfile: str | None = None) -> Iterator[int]:
    """Yield the port `app` listens on (127.0.0.1); stop the server on exit."""
    sock = bind()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
