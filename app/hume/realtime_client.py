"""Hume's Expression Measurement v1 realtime sessions, opened with the server's key, and the limits a relay
enforces before it forwards a browser's message.

The socket is opened with the `websockets` library (the one `hume_expression_measurement` itself uses)
rather than the SDK's socket clients: those parse every server message into pydantic models and skip types
they do not know ("update your SDK version"), while a relay must pass Hume's messages on as Hume sent them,
including types newer than the SDK. The URL and header are the SDK's: `wss://<cloud host>/v1/expression/
{audio,video}/realtime` with `X-Hume-Api-Key` on the handshake, the only place realtime takes a credential
(HUME-V1-FACTS §1, §2).

The handshake is an HTTP request (GET with Upgrade) to Hume's API, so it spends one request of the
organization's 600 per minute (HUME-V1-FACTS §4) through the shared budget like any v1 request; the
frames of an open session are messages on that one request, not requests, and are limited by the
realtime limits below instead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from app.core.metrics import HUME_BUDGET_WAIT_SECONDS, HUME_BUDGET_WAITS
from app.core.tls import client_context
from app.hume.call_timing import Pace
from app.hume.errors import HumeAuthError, HumeError, HumeNotEnabledError, HumeRejectedError, HumeTransientError

MEDIA = ("audio", "video")

# HUME-V1-FACTS §4 (LIM, LE; SDK docstrings): any message, text or binary, over this many bytes ends the session
# with `message_too_large`: 1 MiB on audio, 2 MB on video.
MESSAGE_MAX_BYTES = {"audio": 1_048_576, "video": 2_000_000}
# HUME-V1-FACTS §4: an audio frame is at most 10 s of audio, 320,000 bytes, non-empty and of even length,
# else `invalid_audio_frame` (the session continues).
AUDIO_FRAME_MAX_BYTES = 320_000
# HUME-V1-FACTS §3/§4: realtime audio is s16le PCM, 16,000 Hz, mono: 32,000 bytes a second of audio; Hume
# takes at most 1 s of audio per second ("faster frames may get rate_limited").
AUDIO_BYTES_PER_SECOND = 16_000 * 2
# HUME-V1-FACTS §4: at most 3 video frames a second.
VIDEO_FRAMES_PER_SECOND = 3
# HUME-V1-FACTS §5: the realtime error message is {"type":"error","code","message","retryable"}; the codes a
# relay answers with are Hume's own, so a browser built against Hume reads ours the same way.
INVALID_FRAME_CODE = {"audio": "invalid_audio_frame", "video": "invalid_image_frame"}
RATE_LIMITED = "rate_limited"
MESSAGE_TOO_LARGE = "message_too_large"
# HUME-V1-FACTS §5: the SDK's reconnect policy reads 1008 as the close after a session-ending error (Hume's docs
# do not state the code); a relay that ends a session for Hume's reasons closes with it too.
SESSION_ENDING_CLOSE = 1008


def realtime_url(cloud_url: str, medium: str) -> str:
    """Hume's realtime endpoint on the cloud host (HUME-V1-FACTS §2): http(s) becomes ws(s)."""
    base = cloud_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/v1/expression/{medium}/realtime"


# Hume's tolerance for media sent ahead of the clock is undocumented (HUME-V1-FACTS §4 gives only the rates);
# a relay lets a client run at most this far ahead, which absorbs a browser's jitter (the emulator assumes
# the same 1 s). If Hume is stricter, its own `rate_limited` reaches the browser as Hume sent it.
RATE_SLACK_S = 1.0


@dataclass
class RateGate:
    """Whether a frame may go on to Hume now, by Hume's realtime send rates: what was forwarded, counted in
    seconds of media (audio bytes at 32,000 a second, video frames at 3 a second), may run at most
    RATE_SLACK_S ahead of the wall clock since the first frame forwarded. Refused frames spend nothing (they
    never reach Hume)."""

    medium: str
    sent_s: float = 0.0
    first_at: float | None = None

    def seconds(self, frame: bytes) -> float:
        if self.medium == "audio":
            return len(frame) / AUDIO_BYTES_PER_SECOND
        return 1 / VIDEO_FRAMES_PER_SECOND

    def take(self, frame: bytes, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.first_at is None:
            self.first_at = now
        media_s = self.sent_s + self.seconds(frame)
        if media_s - (now - self.first_at) > RATE_SLACK_S:
            return False
        self.sent_s = media_s
        return True


def frame_problem(medium: str, frame: bytes) -> str | None:
    """Why Hume would refuse this binary frame without ending the session (HUME-V1-FACTS §4), or None."""
    if medium == "audio":
        if not frame:
            return "an audio frame must not be empty"
        if len(frame) % 2:
            return "an audio frame must be a whole number of 16-bit samples (even length)"
        if len(frame) > AUDIO_FRAME_MAX_BYTES:
            return f"an audio frame holds at most 10 s of audio ({AUDIO_FRAME_MAX_BYTES} bytes), got {len(frame)}"
    elif not frame:
        return "an image frame must not be empty"
    return None


class RealtimeClient:
    """Opens Hume realtime sessions with the server's key; every handshake paced by `pace`."""

    def __init__(self, *, api_key: str, cloud_url: str, pace: Pace | None = None, open_timeout_s: float = 10.0) -> None:
        self._api_key = api_key
        self._cloud_url = cloud_url
        self._pace = pace
        self._open_timeout_s = open_timeout_s

    async def open(self, medium: str) -> ClientConnection:
        """A connected session socket; HumeError naming what Hume answered if the handshake is refused."""
        assert medium in MEDIA, medium
        if self._pace is not None:
            wait = await self._pace()
            if wait > 0:
                HUME_BUDGET_WAITS.labels("realtime").inc()
                HUME_BUDGET_WAIT_SECONDS.labels("realtime").inc(wait)
                await asyncio.sleep(wait)
        url = realtime_url(self._cloud_url, medium)
        try:
            return await connect(
                url,
                additional_headers={"X-Hume-Api-Key": self._api_key},
                ssl=client_context() if url.startswith("wss://") else None,
                open_timeout=self._open_timeout_s,
                # Hume's own limit is enforced on what we send; what Hume sends (measurements) is small, but
                # allow the largest message Hume accepts either way.
                max_size=MESSAGE_MAX_BYTES["video"],
                compression=None,
            )
        except InvalidStatus as exc:
            raise _refused(exc.response.status_code, bytes(exc.response.body or b"").decode(errors="replace")) from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise HumeTransientError(f"could not open Hume's realtime session: {exc}") from None

    async def aclose(self) -> None:
        return None


def _refused(status: int, body: str) -> HumeError:
    """A refused handshake as the service's Hume errors: 401 bad key, 403 not enabled (HUME-V1-FACTS §1),
    429/5xx transient, other 4xx rejected. Hume's body is about our key, so it stays in our logs only."""
    message = f"Hume refused the realtime session with HTTP {status}"
    if status == 401:
        return HumeAuthError(message, status=status)
    if status == 403:
        return HumeNotEnabledError(message, status=status)
    if status == 429 or status >= 500:
        return HumeTransientError(message, status=status)
    return HumeRejectedError(message, status=status)
