"""Hume failures as HTTP answers, one table for every route (and for the app's last-resort handler):

  Hume 429 after our retries            503 hume_busy         Retry-After
  other transient (5xx, timeout, no answer) 503 hume_unavailable  Retry-After
  400/422 on a request the client shaped 422 hume_rejected     Hume's message (TTS: the caller can fix it)
  anything else (our key, our setup)      502 hume_error

503 means "the same request may work later"; 502 means it will not until an operator acts.
"""

from __future__ import annotations

import math

from app.errors import AppError
from app.hume.errors import HumeError, HumeRejectedError, HumeTransientError

DEFAULT_RETRY_AFTER_S = 5


class HumeBusy(AppError):
    """Hume is rate limiting us; retry later."""

    status = 503
    code = "hume_busy"


class HumeUnavailable(AppError):
    """Hume is unavailable; retry later."""

    status = 503
    code = "hume_unavailable"


class HumeRejected(AppError):
    """Hume rejected the request."""

    status = 422
    code = "hume_rejected"


class HumeFailed(AppError):
    """Hume failed in a way retrying will not fix."""

    status = 502
    code = "hume_error"


def hume_failure(exc: HumeError, *, client_shaped: bool = False, context: str | None = None) -> AppError:
    """The answer for a Hume failure. `client_shaped`: the caller wrote what Hume judged (TTS text, voice),
    so Hume's 400/422 is theirs to fix. `context` prefixes the message ("access token")."""
    prefix = f"{context}: " if context else ""
    if isinstance(exc, HumeTransientError):
        retry = {"Retry-After": str(max(1, math.ceil(exc.retry_after or DEFAULT_RETRY_AFTER_S)))}
        if exc.status == 429:
            return HumeBusy(f"{prefix}Hume is rate limiting requests; retry later", headers=retry)
        return HumeUnavailable(f"{prefix}Hume is unavailable ({exc.status or 'no answer'}); retry later", headers=retry)
    if client_shaped and isinstance(exc, HumeRejectedError) and exc.status in (400, 422):
        return HumeRejected(f"{prefix}Hume rejected the request: {exc}")
    return HumeFailed(f"{prefix}{exc}")


# The statuses hume_failure can answer, for the OpenAPI document.
STATUSES = (502, 503)
CLIENT_SHAPED_STATUSES = (422, 502, 503)
