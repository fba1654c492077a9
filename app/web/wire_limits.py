"""The server stack and its limits on the wire: uvicorn on httptools and uvloop, with a header-read
deadline and a header size cap (uvicorn has neither for httptools: a client sending one header byte every
few seconds would hold its connection forever, and llhttp buffers a header of any length), keep-alive and
concurrency limits, and the largest WebSocket message read. The body-read deadline lives in read_body, where
the body is read.

httptools and uvloop rather than uvicorn's pure-Python h11 and asyncio, by bench_ack (one uvicorn process,
wrk with 32 connections, the machine shared): a bare Starlette endpoint answering 202 served about 3.5x as
many requests a second on them, and the service's acknowledgements gained too. granian served that bare
endpoint no faster than uvicorn on httptools and uvloop, and would have replaced the protocol these limits
and the live-session relay's WebSocket closes are written against."""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.sessions.service import BROWSER_MESSAGE_MAX_BYTES

# Request line plus headers (llhttp has no cap of its own). A metadata filter travels in the query string:
# 16 KiB of JSON (MAX_METADATA_BYTES) is up to three times that URL-encoded.
MAX_HEADER_BYTES = 64 << 10
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_TOO_LARGE_BODY = (
    b'{"error": {"code": "headers_too_large", "message": "The request line and headers are over %d bytes."}}'
    % MAX_HEADER_BYTES
)


class _HeaderDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose request line and headers are not complete within `header_timeout_s` of
    the connection opening or of the previous response ending, and answers 431 to a head over
    MAX_HEADER_BYTES."""

    header_timeout_s = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _idle_since = 0.0
    _in_head = False
    _head_bytes = 0
    """Bytes received while a request head was incomplete: a head still growing past the cap is refused
    before llhttp buffers more of it (it holds a header of any length until its end)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and the socket uvicorn binds
        # for several worker processes has proto 0: without this every response waits on the client's
        # delayed ACK (40 ms; 700 instead of 6000 requests a second).
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head:  # counted whole, though part of it may have ended the request before
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        # Exact, for a head that arrived whole in one chunk.
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > MAX_HEADER_BYTES:
            self._refuse_head()
            return
        super().on_headers_complete()

    # A refused head has no request cycle: what the parser still reads of its body goes nowhere.
    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.transport.is_closing():
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the connection is a WebSocket's from here: its protocol keeps its own time
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _refuse_head(self) -> None:
        self.logger.info("refusing a request whose headers were too large")
        if self.cycle is None or self.cycle.response_complete:  # else a response is being written: just close
            self.transport.write(_TOO_LARGE % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY))
        self.transport.close()

    def _arm(self) -> None:
        # The clock restarts with every response, but the timer is not moved: a connection answering
        # thousands of requests a second would otherwise cancel and schedule one per request. When it
        # fires early it is set again for the time that is left.
        self._idle_since = self.loop.time()
        if self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        # A request in flight (its head complete) is read_body's business; its response sets the timer again.
        if (self.cycle is not None and not self.cycle.response_complete) or self.transport.is_closing():
            return
        left = self._idle_since + self.header_timeout_s - self.loop.time()
        if left > 0:
            self._deadline = self.loop.call_later(left, self._expire)
            return
        self.logger.info("closing a connection whose headers were too slow")
        self.transport.close()


class EnvironmentHeaderDeadlineProtocol(_HeaderDeadlineProtocol):
    """For several uvicorn processes, which import the protocol by name: the deadline is the
    HEADER_READ_TIMEOUT_S of the process's own settings (the parent's environment)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.header_timeout_s = _environment_header_timeout()
        super().connection_made(transport)


@functools.cache
def _environment_header_timeout() -> float:
    return Settings.from_env().header_read_timeout_s


def uvicorn_options(settings: Settings, *, importable: bool = False) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config / uvicorn.run that apply the limits of `settings`; `importable`
    names the protocol instead of building it (worker processes are spawned with a pickled config)."""
    protocol: type[HttpToolsProtocol] | str = type(
        "HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout_s": settings.header_read_timeout_s}
    )
    if importable:
        protocol = f"{__name__}:{EnvironmentHeaderDeadlineProtocol.__name__}"
    return {
        "http": protocol,
        "loop": "uvloop",
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        # A WebSocket message over this is refused as it is read (close 1009), not buffered whole (uvicorn's
        # default is 16 MiB): the live-session relay's browsers are the server's only WebSockets.
        "ws_max_size": BROWSER_MESSAGE_MAX_BYTES,
    }
