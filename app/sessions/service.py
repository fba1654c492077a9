"""The relay: a browser's WebSocket on one side, Hume's realtime session (opened with the server's key) on
the other, each message passed on as it came once Hume's limits allow it; the session stored as a job
(`live`) whose measurements are appended in batches as they arrive, ended through the outbox.

How each way ends:
- Hume sends `session.closed` (the orderly end, HUME-V1-FACTS §8) and closes: the browser is closed with
  Hume's close code and reason, the job completes.
- Hume closes without `session.closed` (an error or a lost connection): the browser is closed with Hume's
  code (1011 when there was none to pass on: 1005/1006 may not be sent) and the job fails, naming Hume's
  last error code if it sent one.
- The browser goes away: Hume is asked to close (`session.close`, so the last measurement and
  `session.closed` still come and are stored), then the job ends as Hume's side does.
- A browser message over Hume's size limit would end the session at Hume (`message_too_large`); it is
  refused here with Hume's error message, Hume's session is closed and the job fails with that code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.core.prediction_rows import PredictionFormatError, PredictionRow
from app.deps import Deps
from app.hume import realtime_client as hume
from app.hume.errors import HumeError, HumeTransientError
from app.hume.expression_rows import audio_rows, video_rows
from app.store import live_sessions
from app.worker.outbox import end_job

log = structlog.get_logger(__name__)

SCOPE = "session"
SUBPROTOCOL = "hes.session"
TOKEN_SUBPROTOCOL = "hes.token."  # noqa: S105 (a prefix, not a secret)
"""A browser cannot set headers on a WebSocket handshake: it sends the token in the query (`?token=`) or as
a subprotocol `hes.token.<token>` offered beside `hes.session` (which the relay selects)."""

# Our close codes (RFC 6455 §7.4.2 leaves 4000-4999 to applications), named after the HTTP status they mean.
CLOSE_UNAUTHORIZED = 4401
"""No token, or one that is unknown, already used or expired."""
CLOSE_FORBIDDEN = 4403
"""The token's key was revoked, lost the `session` scope, or is not of the token's tenant."""
CLOSE_UNAVAILABLE = 1013
"""Hume is busy or unreachable (RFC 6455 "try again later")."""
CLOSE_UPSTREAM = 1011
"""Hume refused the session, or its connection was lost without a close code to pass on."""
SERVICE_RESTART = 1012
"""uvicorn's disconnect code for every open WebSocket when this process stops (RFC 6455 "service restart"):
the session then ends failed, its Hume session closed and what was measured kept."""
_REFUSALS = {
    "missing": (CLOSE_UNAUTHORIZED, "token missing: pass ?token= or the hes.token.<token> subprotocol"),
    "unknown": (CLOSE_UNAUTHORIZED, "token unknown"),
    "used": (CLOSE_UNAUTHORIZED, "token already used: one token opens one session"),
    "expired": (CLOSE_UNAUTHORIZED, "token expired: mint a new one just before opening the session"),
    "revoked": (CLOSE_FORBIDDEN, "the API key that minted this token was revoked"),
    "scope": (CLOSE_FORBIDDEN, "the API key that minted this token lacks the 'session' scope for its tenant"),
}
HEARTBEAT_S = 10.0
"""How often a session with nothing to store still writes its heartbeat (SESSION_STALE_S is 60 s)."""
BROWSER_SEND_TIMEOUT_S = 10.0
"""How long one message to the browser may wait for room in its socket before the browser counts as gone."""
CLOSE_WAIT_S = 10.0
"""How long Hume gets to answer `session.close` with its last measurement and `session.closed`."""


def token_of(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    for offered in websocket.scope.get("subprotocols", []):
        if offered.startswith(TOKEN_SUBPROTOCOL):
            return str(offered.removeprefix(TOKEN_SUBPROTOCOL))
    return None


@dataclass
class Relay:
    deps: Deps
    browser: WebSocket
    upstream: ClientConnection
    medium: str
    job_id: uuid.UUID
    opened: float = field(default_factory=time.monotonic)
    pending: list[tuple[int, bytes, int]] = field(default_factory=list)
    """Measurements received and not yet stored: (id, the message's JSON, ms since the session opened)."""
    closed_by_hume: dict[str, Any] | None = None
    """Hume's `session.closed` message, once it came."""
    hume_error: tuple[str, str] | None = None
    """Hume's last session-ending error (code, message)."""
    refused: tuple[str, str] | None = None
    """Why this relay ended the session (code, message): a browser message Hume would have refused fatally."""
    browser_gone: bool = False
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the browser stopped reading (see `_send_browser`)."""

    async def run(self) -> None:
        gate = hume.RateGate(self.medium)
        to_browser = asyncio.create_task(self._from_hume())
        to_hume = asyncio.create_task(self._from_browser(gate))
        flusher = asyncio.create_task(self._flush_every(self.deps.settings.session_flush_ms / 1000))
        try:
            stalled = asyncio.create_task(self.stalled.wait())
            await asyncio.wait({to_browser, to_hume, stalled}, return_when=asyncio.FIRST_COMPLETED)
            stalled.cancel()
            if not to_browser.done():
                # The browser left, broke a limit or stopped reading: let Hume finish the session (its last
                # measurement and session.closed are still stored), then close.
                with contextlib.suppress(ConnectionClosed):
                    await self.upstream.send('{"type":"session.close"}')
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(to_browser), CLOSE_WAIT_S)
            to_hume.cancel()
            to_browser.cancel()
            for task in (to_hume, to_browser):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await self.upstream.close()

    async def _from_browser(self, gate: hume.RateGate) -> None:
        limit = hume.MESSAGE_MAX_BYTES[self.medium]
        while True:
            message = await self.browser.receive()
            if message["type"] == "websocket.disconnect":
                self.browser_gone = True
                if message.get("code") == SERVICE_RESTART:
                    self.refused = ("service_restart", "the service restarted during the session")
                return
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            if size > limit:
                # HUME-V1-FACTS §4: over the limit, Hume would end the session with message_too_large.
                detail = f"a message may be at most {limit} bytes on {self.medium} sessions, got {size}"
                self.refused = (hume.MESSAGE_TOO_LARGE, detail)
                await self._tell(hume.MESSAGE_TOO_LARGE, detail, retryable=False)
                return
            if data is not None:
                problem = hume.frame_problem(self.medium, data)
                if problem is not None:
                    await self._tell(hume.INVALID_FRAME_CODE[self.medium], problem, retryable=True)
                    continue
                if not gate.take(data):
                    rate = "1 s of audio per second" if self.medium == "audio" else "3 frames per second"
                    await self._tell(hume.RATE_LIMITED, f"frame dropped: Hume takes at most {rate}", retryable=True)
                    continue
                await self.upstream.send(data)
            elif text is not None:
                await self.upstream.send(text)

    async def _tell(self, code: str, message: str, *, retryable: bool) -> None:
        """An error message in Hume's shape (HUME-V1-FACTS §5), for something refused before reaching Hume."""
        body = {"type": "error", "code": code, "message": message, "retryable": retryable, "source": "relay"}
        await self._send_browser(orjson.dumps(body).decode())

    async def _from_hume(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.upstream:
                if isinstance(message, str):
                    await self._read(message)
                    await self._send_browser(message)
                else:
                    await self._send_browser(message)

    async def _send_browser(self, message: str | bytes) -> None:
        if self.browser_gone:
            return
        try:
            async with asyncio.timeout(BROWSER_SEND_TIMEOUT_S):
                if isinstance(message, str):
                    await self.browser.send_text(message)
                else:
                    await self.browser.send_bytes(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.browser_gone = True
        except TimeoutError:
            # uvicorn's send waits while the socket's buffers are full: a browser that stopped reading would
            # hold Hume's messages (and their storage) back for good, so the session ends instead.
            self.refused = ("browser_not_reading", f"the browser read nothing for {BROWSER_SEND_TIMEOUT_S:.0f} s")
            self.stalled.set()
            self.browser_gone = True

    async def _read(self, message: str) -> None:
        try:
            parsed = orjson.loads(message)
        except orjson.JSONDecodeError:
            return
        if not isinstance(parsed, dict):
            return
        kind = parsed.get("type")
        if kind == "measurement.result":
            # HUME-V1-FACTS §6/§8: audio results carry measurement_id, video results frame_id.
            key = "measurement_id" if self.medium == "audio" else "frame_id"
            measurement_id = parsed.get(key)
            if isinstance(measurement_id, int):
                at_ms = int((time.monotonic() - self.opened) * 1000)
                self.pending.append((measurement_id, message.encode(), at_ms))
        elif kind == "session.created" and isinstance(parsed.get("session_id"), str):
            async with self.deps.sessionmaker.begin() as session:
                await live_sessions.set_hume_session(session, self.job_id, parsed["session_id"])
        elif kind == "session.closed":
            self.closed_by_hume = parsed
        elif kind == "error" and parsed.get("retryable") is False:
            self.hume_error = (str(parsed.get("code")), str(parsed.get("message")))

    async def _flush_every(self, interval_s: float) -> None:
        quiet = 0.0
        while True:
            await asyncio.sleep(interval_s)
            if self.pending:
                try:
                    await self.flush()
                except Exception as exc:  # the store is unreachable or a message is malformed: keep relaying
                    log.warning("live session measurements not stored yet", job_id=str(self.job_id), error=str(exc))
                quiet = 0.0
            else:
                quiet += interval_s
                if quiet >= HEARTBEAT_S:
                    async with self.deps.sessionmaker.begin() as session:
                        await live_sessions.beat(session, self.job_id)
                    quiet = 0.0

    async def flush(self, session: Any = None) -> int:
        """Store what arrived since the last flush (on `session` if given, else in its own transaction)."""
        batch, self.pending = self.pending, []
        if not batch:
            return 0
        bodies = {i: (body, at_ms) for i, body, at_ms in batch}

        def rows(ids: Sequence[int]) -> Iterable[PredictionRow]:
            return measurement_rows(self.medium, [(i, *bodies[i]) for i in ids])

        try:
            if session is not None:
                return await live_sessions.append(session, self.job_id, list(bodies), rows)
            async with self.deps.sessionmaker.begin() as own:
                return await live_sessions.append(own, self.job_id, list(bodies), rows)
        except PredictionFormatError:
            raise  # not in Hume's format: storing it again cannot help, the batch is dropped
        except Exception:
            # Stored ids are skipped on the next try (live_sessions.append), so the batch is simply kept.
            self.pending = batch + self.pending
            raise

    def outcome(self) -> tuple[str, str | None, str | None]:
        """(status, error code, error message) the job ends with."""
        if self.refused is not None:
            return "failed", *self.refused
        if self.hume_error is not None:
            return "failed", *self.hume_error
        if self.closed_by_hume is not None:
            reason = self.closed_by_hume.get("reason")
            # HUME-V1-FACTS §6 close reasons: client_request and idle_timeout end a session as its client left
            # it; error and server_shutdown cut it short (what was measured is kept either way).
            if reason in ("error", "server_shutdown"):
                return "failed", f"hume_{reason}", f"Hume ended the session ({reason})"
            return "completed", None, None
        code, reason = self.upstream.close_code, self.upstream.close_reason
        return "failed", "hume_closed", f"Hume closed the session without session.closed (code {code}, {reason!r})"

    def close_for_browser(self) -> tuple[int, str]:
        if self.refused is not None:
            return hume.SESSION_ENDING_CLOSE, f"{self.refused[0]}"
        code = self.upstream.close_code
        reason = self.upstream.close_reason or ""
        # 1005 (no code) and 1006 (lost) describe a close but may not be sent in one (RFC 6455 §7.4.1).
        if code is None or code in (1005, 1006, 1015):
            return CLOSE_UPSTREAM, "Hume's connection was lost"
        return code, reason

    async def close_browser(self) -> None:
        if self.browser_gone and not self.stalled.is_set():
            return
        code, reason = self.close_for_browser()
        # A stalled browser may never take the close frame: uvicorn drops the connection once this returns.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self.browser.close(code, _short(reason))

    async def end(self) -> None:
        """The last measurements stored and the job ended, in one transaction (the outbox's job.* message too)."""
        status, code, message = self.outcome()
        details: dict[str, Any] = {
            "medium": self.medium,
            "hume_close_code": self.upstream.close_code,
            "hume_close_reason": self.upstream.close_reason,
        }
        if self.closed_by_hume is not None:
            details["received"] = self.closed_by_hume.get("received")
            details["produced"] = self.closed_by_hume.get("produced")
            details["reason"] = self.closed_by_hume.get("reason")
        try:
            async with self.deps.sessionmaker.begin() as session:
                await self.flush(session)
                await end_job(session, self.deps, self.job_id, status, error=message, error_code=code, details=details)
        except PredictionFormatError as exc:
            # The last batch cannot be stored; the session still ends, saying so, with what was stored.
            async with self.deps.sessionmaker.begin() as session:
                await end_job(
                    session, self.deps, self.job_id, "failed", error=str(exc), error_code="measurement_invalid",
                    details=details,
                )  # fmt: skip


def _short(reason: str) -> str:
    """A close reason fits in 123 bytes of UTF-8 (RFC 6455 §5.5: 125 bytes of payload with the code)."""
    data = reason.encode()
    return reason if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."


def measurement_rows(medium: str, items: Sequence[tuple[int, bytes, int]]) -> Iterator[PredictionRow]:
    """Measurement messages (id, JSON, ms since the session opened) as prediction rows of the session's one
    source: audio windows are already in ms from the session's start (HUME-V1-FACTS §8: times count from
    accepted audio); a video result is placed at the time it arrived (frame ids count results, not frames)."""
    document = b'{"measurements":[' + b",".join(body for _, body, _ in items) + b"]}"
    if medium == "audio":
        return audio_rows(0, None, 0, document)
    return video_rows(0, None, [(i, at_ms) for i, _, at_ms in items], document)


async def refuse(websocket: WebSocket, reason: str) -> None:
    code, text = _REFUSALS[reason]
    await websocket.close(code, text)


async def serve(websocket: WebSocket, deps: Deps, medium: str) -> None:
    """One browser connection: one Hume session, one job."""
    offered = websocket.scope.get("subprotocols", [])
    # Accepted before the token is read: a refusal before accept is a bare HTTP 403 the browser cannot read,
    # while a close after it carries a code and reason.
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    token = token_of(websocket)
    if not token:
        await refuse(websocket, "missing")
        return
    async with deps.sessionmaker.begin() as session:
        redeemed = await live_sessions.redeem(session, token, scope=SCOPE)
    if isinstance(redeemed, live_sessions.Refused):
        log.info("live session refused", reason=redeemed.reason, medium=medium)
        await refuse(websocket, redeemed.reason)
        return
    try:
        upstream = await deps.realtime.open(medium)
    except HumeError as exc:
        log.warning("Hume refused a live session", error=str(exc), status=exc.status, medium=medium)
        transient = isinstance(exc, HumeTransientError)
        # The token named this job to its backend: it exists, failed, naming why, rather than never at all.
        async with deps.sessionmaker.begin() as session:
            job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium=medium, request={"medium": medium})
            error_code = getattr(exc, "code", None) or ("hume_unavailable" if transient else "hume_rejected")
            await end_job(session, deps, job_id, "failed", error=str(exc), error_code=error_code)
        code = CLOSE_UNAVAILABLE if transient else CLOSE_UPSTREAM
        await websocket.close(code, _short(f"Hume did not open the session: {exc}"))
        return
    async with deps.sessionmaker.begin() as session:
        job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium=medium, request={"medium": medium})
    relay = Relay(deps=deps, browser=websocket, upstream=upstream, medium=medium, job_id=job_id)
    log.info("live session opened", job_id=str(job_id), medium=medium, tenant=redeemed.tenant)
    try:
        await relay.run()
    except asyncio.CancelledError:
        # The service is stopping: the session ends failed with what was stored kept, never left live.
        relay.refused = ("service_shutdown", "the service stopped during the session")
        with contextlib.suppress(Exception):
            await upstream.close()
        await asyncio.shield(relay.end())
        raise
    try:
        # Stored and ended before the browser hears the close: a client that then reads the job finds it final.
        await relay.end()
    finally:
        await relay.close_browser()
    log.info("live session ended", job_id=str(job_id), outcome=relay.outcome()[0])


async def end_abandoned(deps: Deps) -> int:
    """Reconciler check: live sessions whose relay's heartbeat stopped (its process died) end failed, with
    what was stored kept."""
    async with deps.sessionmaker.begin() as session:
        stale = await live_sessions.abandoned(session, older_than_s=deps.settings.session_stale_s)
        for job_id in stale:
            await end_job(
                session, deps, job_id, "failed", error_code="relay_lost",
                error="the service relaying this session stopped before it ended; what was measured is kept",
            )  # fmt: skip
    if stale:
        log.warning("abandoned live sessions ended", jobs=[str(j) for j in stale])
    return len(stale)
