"""What can go wrong talking to Hume, as the rest of the service needs to tell it apart.

HumeError
 +-- HumeTransientError   429, 5xx, timeouts, connection errors: try again later (retry_after if known)
 +-- HumeRejectedError    a 4xx about our request: retrying cannot help; carries Hume's message
 |    +-- HumeAuthError     401: the key is wrong (the whole job fails)
 |    |    +-- HumeNotEnabledError  403: the organization may not use this API (v1's limited release)
 |    +-- HumeMediaRefused  v1 refused one medium (decode failure, too large, unsupported): that source fails
 +-- HumeSunsetError      the batch API answered 404/410 for a path that exists: the 2026-06-15 sunset
 +-- HumeNotFoundError    a job or chat id Hume does not know
"""

from __future__ import annotations


class HumeError(Exception):
    """Hume could not be reached or refused the request."""

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        # A docstring reused as the message would carry its line breaks and indentation to users.
        super().__init__(message or " ".join((self.__doc__ or "").split()))
        self.status = status


class HumeTransientError(HumeError):
    """Hume is busy or unreachable; the call may succeed later."""

    def __init__(
        self, message: str | None = None, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class HumeRejectedError(HumeError):
    """Hume rejected the request."""


class HumeAuthError(HumeRejectedError):
    """Hume refused our credentials (401): check HUME_API_KEY (HUME_CLOUD_API_KEY for v1)."""

    code = "hume_unauthorized"
    """The job error code a job refused this way ends with."""


class HumeNotEnabledError(HumeAuthError):
    """Hume answered 403: the key is valid, but its organization is not permitted to use this API. v1 is in
    limited release since 2026-10-06, access by request to Hume's sales (HUME.md §0;
    dev.hume.ai/home/authentication)."""

    code = "hume_not_enabled"


class HumeMediaRefused(HumeRejectedError):
    """Hume could not take this medium; `code` is Hume's error code (audio_decode_failed, ...)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", request_id: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.request_id = request_id


class HumeSunsetError(HumeError):
    """Hume's batch Expression Measurement API was shut down on 2026-06-15 (the server answered 404/410).
    Point HUME_VOICE_URL (or HUME_BASE_URL) at a compatible server, such as this service's emulator, to run
    batch jobs."""


class HumeNotFoundError(HumeError):
    """Hume does not know this id."""
