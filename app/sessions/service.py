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
  refused here with Hume's error message, Hume's session is closed and the job fails with that code. One over
  BROWSER_MESSAGE_MAX_BYTES is refused while it is read (uvicorn's ws_max_size: close 1009), never buffered.
- The tenant's daily budget of Hume-metered seconds cannot pay for the next frame (app/usage/session_meter.py):
  the frame is not forwarded, the browser gets an `error` (hume_budget_exhausted), Hume's session is closed in
  order (what it measured so far is still stored) and the browser is closed 4429; the job fails
  `hume_budget_exhausted`, as a file job stopped by its budget does. Hume never takes more than was reserved.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.core.prediction_rows import PredictionFormatError
from app.deps import Deps
from app.hume import billing
from app.hume import realtime_client as hume
from app.hume.errors import HumeError, HumeTransientError
from app.sessions import flusher
from app.store import live_sessions
from app.store.hume_usage import DayBudget
from app.usage import budget, session_meter
from app.usage.session_meter import SessionMeter
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
CLOSE_BUDGET_SPENT = 4429
"""The tenant's daily budget of Hume-metered seconds is spent (HTTP 429 with POST /v1/session-tokens)."""
CLOSE_TOO_BIG = 1009
"""RFC 6455 "message too big": uvicorn's close when a message passes BROWSER_MESSAGE_MAX_BYTES."""
BROWSER_MESSAGE_MAX_BYTES = max(hume.MESSAGE_MAX_BYTES.values()) + 64 * 1024
"""uvicorn's ws_max_size (app/web/wire_limits.py), one limit for every WebSocket of the server: Hume's largest
message (2,000,000 bytes on video, HUME-V1-FACTS §4) and 64 KiB more, so a message a little over Hume's limit
still gets the relay's `message_too_large` in Hume's words, while anything larger is refused by the protocol
layer as it is read (close 1009) instead of being buffered whole up to uvicorn's default 16 MiB."""
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
BROWSER_SEND_TIMEOUT_S = 10.0
"""How long one message to the browser may wait for room in its socket before the session ends
browser_not_reading. What a browser that stopped reading holds in the service meanwhile is bounded: the one
message being sent (the relay sends one at a time), uvicorn's write buffer (its send waits above asyncio's
64 KiB high-water mark) and at most 16 of Hume's messages queued in the upstream connection (websockets'
max_queue) before TCP pushes back on Hume."""
STALLED_CLOSE_WAIT_S = 10.0
"""How long a browser that stopped reading gets to take its close frame (what its buffers hold goes first)
after the job ended; then the connection is dropped without one."""
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
    meter: SessionMeter
    """The session's Hume bill so far, reserved against its tenant's budget."""
    opened: float = field(default_factory=time.monotonic)
    closed_by_hume: dict[str, Any] | None = None
    """Hume's `session.closed` message, once it came."""
    hume_error: tuple[str, str] | None = None
    """Hume's last session-ending error (code, message)."""
    refused: tuple[str, str] | None = None
    """Why this relay ended the session (code, message): a browser message Hume would have refused fatally."""
    refused_close: tuple[int, str] | None = None
    """The browser's close (code, reason) when `refused` has its own (else 1008 naming the code)."""
    browser_gone: bool = False
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the browser stopped reading (see `_send_browser`)."""

    async def run(self) -> None:
        # Its measurements are stored by the process's flusher (app/sessions/flusher.py), with every session's.
        self.deps.live.open(self.job_id, self.medium)
        gate = hume.RateGate(self.medium)
        to_browser = asyncio.create_task(self._from_hume())
        to_hume = asyncio.create_task(self._from_browser(gate))
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
            await self.upstream.close()

    async def _from_browser(self, gate: hume.RateGate) -> None:
        limit = hume.MESSAGE_MAX_BYTES[self.medium]
        while True:
            message = await self.browser.receive()
            if message["type"] == "websocket.disconnect":
                self.browser_gone = True
                if message.get("code") == SERVICE_RESTART:
                    self.refused = ("service_restart", "the service restarted during the session")
                elif message.get("code") == CLOSE_TOO_BIG:
                    self.refused = (
                        hume.MESSAGE_TOO_LARGE,
                        f"a message over {BROWSER_MESSAGE_MAX_BYTES} bytes was refused while it was read",
                    )
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
                try:
                    spent = await self.meter.admit(len(data))
                except Exception as exc:  # the database is away: with the budget unknown, nothing more is sent
                    log.warning("live session's Hume budget not checked", job_id=str(self.job_id), error=str(exc))
                    self.refused = ("store_unavailable", "the tenant's Hume budget could not be checked")
                    return
                if spent is not None:
                    await self._budget_spent(spent, billing.realtime_frame_seconds(self.medium, len(data)))
                    return
                await self.upstream.send(data)
            elif text is not None:
                await self.upstream.send(text)

    async def _budget_spent(self, spent: DayBudget, frame_s: float) -> None:
        detail = budget.spent_message(spent, frame_s, "the session's next frame")
        self.refused = (budget.BUDGET_EXHAUSTED, detail)
        self.refused_close = (CLOSE_BUDGET_SPENT, budget.close_reason(spent))
        await self._tell(budget.BUDGET_EXHAUSTED, detail, retryable=False)

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
        except TimeoutError:
            # Caught before OSError, its base class. uvicorn's send waits while the socket's buffers are full:
            # a browser that stopped reading would hold Hume's messages back for good, so the session ends.
            self.refused = ("browser_not_reading", f"the browser read nothing for {BROWSER_SEND_TIMEOUT_S:.0f} s")
            self.stalled.set()
            self.browser_gone = True
        except (WebSocketDisconnect, RuntimeError, OSError):
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
                if not self.deps.live.add(self.job_id, measurement_id, message.encode(), at_ms) and not self.refused:
                    # The database has been away for a while: a session it cannot store ends rather than
                    # going on unrecorded (and billed).
                    held = f"{flusher.PENDING_MAX_BYTES // 1024} KiB"
                    self.refused = ("store_unavailable", f"measurements could not be stored ({held} waiting)")
                    self.stalled.set()
        elif kind == "session.created" and isinstance(parsed.get("session_id"), str):
            async with self.deps.sessionmaker.begin() as session:
                await live_sessions.set_hume_session(session, self.job_id, parsed["session_id"])
                await self.meter.owns(session, parsed["session_id"])
        elif kind == "session.closed":
            self.closed_by_hume = parsed
        elif kind == "error" and parsed.get("retryable") is False:
            self.hume_error = (str(parsed.get("code")), str(parsed.get("message")))

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
        if self.refused_close is not None:
            return self.refused_close
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
            async with asyncio.timeout(STALLED_CLOSE_WAIT_S):
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
            await self.deps.live.finish(
                self.job_id,
                lambda session: end_job(
                    session, self.deps, self.job_id, status, error=message, error_code=code, details=details
                ),
            )
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


async def refuse(websocket: WebSocket, reason: str) -> None:
    code, text = _REFUSALS[reason]
    await websocket.close(code, text)


async def refuse_spent(websocket: WebSocket, spent: DayBudget) -> None:
    """The tenant's budget cannot pay for a session: an `error` in Hume's shape saying so in full, then 4429."""
    body = {"type": "error", "code": budget.BUDGET_EXHAUSTED, "message": session_meter.cannot_open(spent),
            "retryable": False, "source": "relay"}  # fmt: skip
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_text(orjson.dumps(body).decode())
        await websocket.close(CLOSE_BUDGET_SPENT, budget.close_reason(spent))


async def _end_billing(meter: SessionMeter) -> None:
    """The session's bill becomes its estimate and its run is queued to be read; a failure here (the database
    away) leaves the reservation standing as the estimate, and must not keep the job from ending."""
    try:
        await meter.end()
    except Exception as exc:
        log.warning("live session's Hume bill not settled; its reservation stands", job_id=str(meter.job_id),
                    error=str(exc))  # fmt: skip


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
    # The token named this job to its backend: it exists from here on, failed naming why if the session
    # cannot open, rather than never at all. Its tenant's budget pays for a session's minimum before Hume
    # is asked (the handshake is a request of the organization's shared budget).
    async with deps.sessionmaker.begin() as session:
        job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium=medium, request={"medium": medium})
        meter = await session_meter.open_meter(session, deps, job_id, medium)
        if isinstance(meter, DayBudget):
            await end_job(session, deps, job_id, "failed", error=session_meter.cannot_open(meter),
                          error_code=budget.BUDGET_EXHAUSTED)  # fmt: skip
    if isinstance(meter, DayBudget):
        log.info("live session refused: tenant's Hume budget spent", job_id=str(job_id), tenant=redeemed.tenant)
        await refuse_spent(websocket, meter)
        return
    try:
        upstream = await deps.realtime.open(medium)
    except HumeError as exc:
        log.warning("Hume refused a live session", error=str(exc), status=exc.status, medium=medium)
        transient = isinstance(exc, HumeTransientError)
        await meter.release()
        async with deps.sessionmaker.begin() as session:
            error_code = getattr(exc, "code", None) or ("hume_unavailable" if transient else "hume_rejected")
            await end_job(session, deps, job_id, "failed", error=str(exc), error_code=error_code)
        code = CLOSE_UNAVAILABLE if transient else CLOSE_UPSTREAM
        await websocket.close(code, _short(f"Hume did not open the session: {exc}"))
        return
    relay = Relay(deps=deps, browser=websocket, upstream=upstream, medium=medium, job_id=job_id, meter=meter)
    log.info("live session opened", job_id=str(job_id), medium=medium, tenant=redeemed.tenant)
    try:
        await relay.run()
    except asyncio.CancelledError:
        # The service is stopping: the session ends failed with what was stored kept, never left live.
        relay.refused = ("service_shutdown", "the service stopped during the session")
        with contextlib.suppress(Exception):
            await upstream.close()
        await asyncio.shield(_end_billing(meter))
        await asyncio.shield(relay.end())
        raise
    await _end_billing(meter)
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
            # Its stats were kept in the lost process's memory (app/sessions/flusher.py): made from its rows.
            await live_sessions.restat(session, job_id)
            await end_job(
                session, deps, job_id, "failed", error_code="relay_lost",
                error="the service relaying this session stopped before it ended; what was measured is kept",
            )  # fmt: skip
        await session_meter.read_abandoned(session, deps, stale)
    if stale:
        log.warning("abandoned live sessions ended", jobs=[str(j) for j in stale])
    return len(stale)
