"""What the v1 realtime endpoints share: one WebSocket connection is one session and one run.

Protocol (HUME-V1-FACTS §8; SDK audio/socket_client.py, video/socket_client.py, types/*session*): text frames
are JSON with a `type`, media is binary. The server opens with `session.created` (the session id and the
default config); the client may send `session.update` before its first media frame (answered by
`session.updated`, the full config: omitted fields are reset, §3) and `session.close`, answered by what is
still due, then `session.closed {session_id, reason, received, produced}`, after which the server closes.

Choices where the facts are silent, each so that a client written for either possibility works here:
- A session-ending error is the `error` message, then `session.closed` with reason `error` (the reason exists
  in the SDK's CloseReason; whether Hume sends it after an error is unstated), then close code 1008, which the
  SDK's reconnect policy assumes (§5).
- A `session.update` that is not valid ends the session with `config_invalid` even before media (§5: "a bad
  update before media is not stated either way"; ending it is the stricter of the two).
- A text message that is not JSON, or of an unknown `type`, gets `message_invalid` and the session continues
  (§5: its effect is not stated), retryable true as for every error a session survives.
- The close code after `session.closed` is 1000 (client_request, idle_timeout).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from starlette.websockets import WebSocket, WebSocketDisconnect

from .expression_errors import ExpressionError
from .expression_runs import user_id
from .records import Run
from .state import EmulatorState

Json = dict[str, Any]
# RFC 6455 close codes: 1000 normal, 1005 "no status" (the client's close frame had no code), 1006 abnormal
# (no close frame), 1008 policy violation (HUME-V1-FACTS §5: the SDK assumes it after a session-ending error).
NORMAL, GOING_AWAY, NO_STATUS, ABNORMAL, ENDED_BY_ERROR = 1000, 1001, 1005, 1006, 1008
LOST = 1011  # HUME-V1-FACTS §6: a run's close_code is 1011 "if the connection was lost"
RESTART = 1012  # RFC 6455 "service restart": what uvicorn sends its WebSockets when the emulator stops


class SessionEnded(Exception):
    """The session is over; the connection is closed or gone."""


def fields(message: Json, allowed: tuple[str, ...], where: str) -> None:
    """Unknown fields are refused (HUME-V1-FACTS §3) and so is an explicit null (as for upload configs,
    expression_config.py: the docs are silent, and a client that omits unset fields works either way)."""
    for key, value in message.items():
        if key not in allowed:
            raise ExpressionError("config_invalid", f"{where}: unknown field `{key}`, expected one of {allowed}.")
        if value is None:
            raise ExpressionError("config_invalid", f"{where}: `{key}` is null; omit it to use its default.")


def sub_object(message: Json, key: str) -> Json:
    value = message.get(key, {})
    if not isinstance(value, dict):
        raise ExpressionError("config_invalid", f"session.update: `{key}` must be a JSON object.")
    return value


class RealtimeSession(abc.ABC):
    """One realtime session over its WebSocket, recorded as a run with mode `realtime`."""

    endpoint: ClassVar[str]
    # HUME-V1-FACTS §4: any message (text or binary) over this ends the session with message_too_large.
    max_message_bytes: ClassVar[int]

    def __init__(self, ws: WebSocket, state: EmulatorState) -> None:
        self.ws = ws
        self.state = state
        self.run = Run(self.endpoint, user_id(ws), self.run_config(), mode="realtime")
        self.media_seen = False  # a session.update after the first media frame ends the session (§3)
        self.first_media_at: float | None = None  # when the first frame was taken in, for the rate check
        self.bytes_received = 0

    # What each endpoint defines.

    @abc.abstractmethod
    def run_config(self) -> Json:
        """The run's `config` (HUME-V1-FACTS §6)."""

    @abc.abstractmethod
    def config_fields(self) -> Json:
        """The config as `session.created`/`session.updated` carry it."""

    @abc.abstractmethod
    def update(self, message: Json) -> None:
        """Apply a `session.update` (omitted fields reset), or raise ExpressionError config_invalid."""

    @abc.abstractmethod
    async def media(self, data: bytes) -> None:
        """One binary frame within the message size limit."""

    @abc.abstractmethod
    async def finish(self) -> None:
        """What is still due before `session.closed` in an orderly close."""

    @abc.abstractmethod
    def totals(self) -> Json:
        """`received` and `produced` of `session.closed`."""

    # Shared.

    async def send(self, message: Json) -> None:
        try:
            await self.ws.send_text(json.dumps(message))
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:  # the client is gone
            self._end(False, LOST, "error")
            raise SessionEnded from exc

    async def error(self, code: str, message: str) -> None:
        """An error the session survives (HUME-V1-FACTS §5: retryable true)."""
        await self.send({"type": "error", "code": code, "message": message, "retryable": True})

    def event(self, kind: str, detail: Json | None = None) -> None:
        with self.state.lock:
            self.run.record_event(kind, detail)

    def rate_ok(self, ahead_s: float) -> bool:
        """Whether media `ahead_s` seconds ahead of the wall clock since the first frame is within the slack."""
        now = time.monotonic()
        if self.first_media_at is None:
            self.first_media_at = now
        return ahead_s - (now - self.first_media_at) <= self.state.config.realtime_rate_slack_s

    def meter(self, seconds: float) -> None:
        """Billing updates while the run is live (HUME-V1-FACTS §6)."""
        with self.state.lock:
            self.run.metered_seconds += seconds

    async def fail(self, code: str, message: str) -> NoReturn:
        """A session-ending error: `error` (retryable false), `session.closed` (reason error), close 1008."""
        await self.send({"type": "error", "code": code, "message": message, "retryable": False})
        await self._close("error", ENDED_BY_ERROR, ok=False)

    async def _close(self, reason: str, code: int, ok: bool) -> NoReturn:
        await self.send({"type": "session.closed", "session_id": self.run.run_id, "reason": reason, **self.totals()})
        self._end(ok, code, reason)
        try:
            await self.ws.close(code, reason)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass
        raise SessionEnded

    def _end(self, ok: bool, code: int | None, reason: str | None) -> None:
        with self.state.lock:
            if self.run.status == "live":
                self.run.finish_session(ok, code, reason, self.bytes_received)

    async def end_by_server(self, error: str | None) -> None:
        """Ended from outside the session (the control route realtime_control.py): a shutdown (`session.closed`
        reason `server_shutdown`, close code 1001 "going away", after which the SDK reconnects), or a
        session-ending `error` such as an audio `internal_error` (HUME-V1-FACTS §5)."""
        with contextlib.suppress(SessionEnded):  # raised by both, once the connection is closed
            if error is None:
                await self._close("server_shutdown", GOING_AWAY, ok=True)
            await self.fail(error, "The session failed on the server; open a new connection.")

    async def serve(self) -> None:
        await self.ws.accept()
        with self.state.lock:
            self.state.runs[self.run.run_id] = self.run
            self.state.sessions[self.run.run_id] = self
        try:
            await self.send({"type": "session.created", "session_id": self.run.run_id, **self.config_fields()})
            while True:
                await self._one_message()
        except SessionEnded:
            return
        finally:
            self._end(False, LOST, "error")  # only if nothing recorded an end (e.g. the server stopping)
            with self.state.lock:
                self.state.sessions.pop(self.run.run_id, None)

    async def _one_message(self) -> None:
        idle = self.state.config.realtime_idle_timeout_s
        try:
            message = await asyncio.wait_for(self.ws.receive(), timeout=idle)
        except TimeoutError:
            await self.finish()
            await self._close("idle_timeout", NORMAL, ok=True)
        if message["type"] == "websocket.disconnect":
            self._disconnected(message)
            raise SessionEnded
        with self.state.lock:
            self.run.heard_at = time.monotonic()
        data: bytes | None = message.get("bytes")
        text: str | None = message.get("text")
        size = len(data) if data is not None else len(text.encode()) if text is not None else 0
        if size > self.max_message_bytes:
            self.event("message_too_large", {"limit_bytes": self.max_message_bytes})
            await self.fail("message_too_large", f"The message is {size} bytes; the limit is {self.max_message_bytes}.")
        if data is not None:
            self.media_seen = True
            await self.media(data)
        elif text is not None:
            await self._text(text)

    def _disconnected(self, message: Mapping[str, Any]) -> None:
        """HUME-V1-FACTS §6: close_code is the client's code, 1011 if the connection was lost; close_reason the
        client's close-frame text; both absent when the client's close frame carried no code.

        uvicorn tells a lost connection (1005 or 1006, without a `reason` key) from a close frame (which always
        brings `reason`), and reports its own shutdown as 1012 without a `reason`: a restart, as Hume's
        `server_shutdown`."""
        code: int = message.get("code", ABNORMAL)
        if "reason" not in message and code in (NO_STATUS, ABNORMAL):
            self._end(False, LOST, "error")
        elif "reason" not in message and code == RESTART:
            self._end(True, RESTART, "server_shutdown")
        elif code == NO_STATUS:
            self._end(True, None, None)
        else:
            self._end(True, code, message.get("reason") or None)

    async def _text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(message, dict) or kind not in ("session.update", "session.close"):
            await self.error("message_invalid", "Expected a JSON object of type session.update or session.close.")
            return
        if kind == "session.close":
            await self.finish()
            await self._close("client_request", NORMAL, ok=True)
        if self.media_seen:
            await self.fail("config_invalid", "session.update is only accepted before the first media frame.")
        try:
            self.update(message)
        except ExpressionError as exc:
            await self.fail("config_invalid", exc.message)
        with self.state.lock:
            self.run.config = self.run_config()
        await self.send({"type": "session.updated", **self.config_fields()})
