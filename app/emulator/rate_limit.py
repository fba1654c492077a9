"""Hume's request rate limit: "each organization can make up to 600 requests per minute" (HUME-V1-FACTS §4,
LE intro), counted here per organization over a sliding 60 s window.

What Hume answers past it is undocumented for v1. Its Audio Decisions gateway (same host, api.cloud.hume.ai)
answers 429 `{"message": "API rate limit exceeded"}` with no type/code
(https://dev.hume.ai/audio-decisions/docs/errors); the emulator answers v1 (and every other Hume path it
serves) the same way, which is an inference. The Retry-After header is ours: the whole seconds until the
oldest counted request leaves the window, so a client that honours it is admitted on its retry.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

WINDOW_S = 60.0
RATE_LIMITED_BODY = {"message": "API rate limit exceeded"}


class RequestLog:
    """When each organization's admitted requests arrived, over the last `WINDOW_S` seconds."""

    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, organization: str, per_minute: int, now: float | None = None) -> int | None:
        """Count one request and return None, or, past `per_minute`, the seconds to wait (a refused
        request is not counted: it used no capacity)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._times.setdefault(organization, deque())
            while times and times[0] <= now - WINDOW_S:
                times.popleft()
            if len(times) >= per_minute:
                return max(1, math.ceil(times[0] + WINDOW_S - now))
            times.append(now)
            if len(self._times) > 1000:  # forget organizations with nothing left in their window
                self._times = {k: v for k, v in self._times.items() if v and v[-1] > now - WINDOW_S}
            return None

    def clear(self) -> None:
        with self._lock:
            self._times.clear()
