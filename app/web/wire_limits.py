"""Time and size limits on the wire, for uvicorn: a header-read deadline (uvicorn has none for h11: a
client sending one header byte every few seconds would hold its connection forever), keep-alive and
concurrency limits, and the largest WebSocket message read. The body-read deadline lives in read_body, where
the body is read."""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings
from app.sessions.service import BROWSER_MESSAGE_MAX_BYTES

# Request line plus headers; h11's default is 16 KiB too, stated here so it is a promise.
MAX_HEADER_BYTES = 16 << 10


class _HeaderDeadlineProtocol(H11Protocol):
    """Closes a connection whose request line and headers are not complete within `header_timeout_s` of
    the connection opening or of the previous response ending."""

    header_timeout_s = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _idle_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and the socket uvicorn binds
        # for several worker processes has proto 0: without this every response waits on the client's
        # delayed ACK (40 ms; 700 instead of 6000 requests a second).
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        # The clock restarts with every response, but the timer is not moved: a connection answering
        # thousands of requests a second would otherwise cancel and schedule one per request. When it
        # fires early it is set again for the time that is left.
        self._idle_since = self.loop.time()
        if self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        # IDLE: h11 has not seen a complete request head in this cycle (a body is read_body's business);
        # otherwise the next response sets the timer again.
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
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
    protocol: type[H11Protocol] | str = type(
        "HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout_s": settings.header_read_timeout_s}
    )
    if importable:
        protocol = f"{__name__}:{EnvironmentHeaderDeadlineProtocol.__name__}"
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        # A WebSocket message over this is refused as it is read (close 1009), not buffered whole (uvicorn's
        # default is 16 MiB): the live-session relay's browsers are the server's only WebSockets.
        "ws_max_size": BROWSER_MESSAGE_MAX_BYTES,
    }
