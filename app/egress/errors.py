"""What can go wrong fetching or posting to a URL someone else gave us; each message fits one line for the user.

EgressError
 +-- BlockedUrl      the URL's scheme, host or resolved address is not allowed
 +-- MediaTooLarge   the body grew past MEDIA_MAX_BYTES (checked while streaming)
 +-- FetchFailed     the server answered with an error status, timed out or could not be reached
"""

from __future__ import annotations

from typing import Literal

FailureKind = Literal["status", "timeout", "connection", "redirects"]


class EgressError(Exception):
    code = "egress_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BlockedUrl(EgressError):
    code = "blocked_url"


class MediaTooLarge(EgressError):
    code = "media_too_large"

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"{url} is larger than the {limit} byte limit (MEDIA_MAX_BYTES)")
        self.limit = limit


class FetchFailed(EgressError):
    code = "fetch_failed"

    def __init__(self, message: str, *, kind: FailureKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.status = status
