"""Errors of Hume's v1 Expression Measurement API: the codes, their HTTP statuses and the body shape.

The official SDK (`hume-expression-measurement`) parses every non-401 error body as
``{"type": "error", "code", "message", "request_id"}`` and a 401 as ``{"message", "request_id"?}``.
"""

from __future__ import annotations

import uuid
from typing import Any

# HUME-V1-FACTS §5 (SDK request_error_code.py, the complete list of 13 codes). Documented statuses: 400 for
# message_invalid and config_invalid; the others are inferred from the code names and the SDK's per-endpoint
# handlers (it maps 400/403/404/405/413/415/500/503 to its own error classes; anything else is ApiError).
STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "message_invalid": 400,
    "config_invalid": 400,
    "audio_decode_failed": 400,
    "image_decode_failed": 400,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "audio_too_long": 413,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "internal_error": 500,
    "server_busy": 503,
}


class ExpressionError(Exception):
    """A request the v1 API refuses; ``code`` is one of ``STATUS_BY_CODE``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "request_id": request_id or new_request_id()}


def code_for_status(status: int) -> str:
    """The code an injected fault of this status carries (429 is how Hume's gateway says busy, too)."""
    if status in (429, 503):
        return "server_busy"
    for code, code_status in STATUS_BY_CODE.items():
        if code_status == status and code not in (
            "message_invalid",
            "config_invalid",
            "audio_decode_failed",
            "image_decode_failed",
        ):
            return code
    return "internal_error" if status >= 500 else "invalid_request"


def auth_error_body(message: str, with_request_id: bool) -> dict[str, Any]:
    """401: answered before the service, so no ``type``/``code``; ``request_id`` only for a rejected key."""
    body: dict[str, Any] = {"message": message}
    if with_request_id:
        body["request_id"] = new_request_id()
    return body
