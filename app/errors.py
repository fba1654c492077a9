"""Errors a client can cause, each with its HTTP status; routes never build error bodies by hand.

AppError
 +-- BadPayload (400)        a webhook body we cannot read
 +-- InvalidInput (422)      a field is wrong; `field` names it
 +-- Unauthorized (401)      missing or unknown API key / webhook credentials
 +-- Forbidden (403)         the key lacks the scope
 +-- NotFound (404)
 +-- Conflict (409)          Idempotency-Key reused with a different body
 +-- PayloadTooLarge (413)
 +-- HumeRetired (410)       the Hume API this needs was retired and nothing we hold answers it
 +-- PredictionsExpired (410) retention dropped (some of) the job's predictions; its summary remains
 +-- RequestTimeout (408)    the body came too slowly
 +-- ClientGone (400)        the client hung up mid-body (no one reads the answer; logged quietly)
 +-- Unavailable (503)       the database (or a dependency) is down: retry later
 (Hume's own failures are app.api.hume_failures: 503 hume_busy/hume_unavailable, 502 hume_error)
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str | None = None, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message or self.__doc__ or self.code)
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        self.headers = headers or {}


class BadPayload(AppError):
    """The body cannot be read."""

    status = 400
    code = "bad_payload"


class InvalidInput(AppError):
    """The request is invalid."""

    status = 422
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details={"field": field})
        self.field = field


class Unauthorized(AppError):
    """A valid API key is required (Authorization: Bearer <key>)."""

    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    """This API key lacks the scope this endpoint needs."""

    status = 403
    code = "forbidden"


class NotFound(AppError):
    """Not found."""

    status = 404
    code = "not_found"


class Conflict(AppError):
    """The request conflicts with an earlier one."""

    status = 409
    code = "conflict"


class RequestTimeout(AppError):
    """The request body was not received in time."""

    status = 408
    code = "request_timeout"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Connection": "close"})


class ClientGone(AppError):
    """The client closed the connection before sending the whole body."""

    status = 400
    code = "client_closed"

    def __init__(self) -> None:
        super().__init__(headers={"Connection": "close"})


class PayloadTooLarge(AppError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class HumeRetired(AppError):
    """Hume retired the API this request needs, and this service holds no answer for it."""

    status = 410
    code = "hume_retired"


class PredictionsExpired(AppError):
    """Retention dropped this job's predictions (some or all of them); its summary remains."""

    status = 410
    code = "predictions_expired"


class Unavailable(AppError):
    """The service is temporarily unavailable; retry later."""

    status = 503
    code = "unavailable"
