"""Errors of Hume's Audio Decisions API as the emulator answers them (AUDIO-DECISIONS-FACTS §4).

Two shapes (https://dev.hume.ai/audio-decisions/docs/errors): the service's
`{"type": "error", "code", "message", "param"?, "request_id"}` (param a JSON pointer into the `request` part or
the input-tokens body, or a part or header name; absent when the whole request is at fault), and the
gateway's, answered before the service, with `message` only: 401 `{"message": "Unauthorized", "request_id"}`
(request_id only when a key was sent and refused, D/authentication) and 429 `{"message": "API rate limit
exceeded"}` (rate_limit.py).

Statuses other than question_invalid's 400 are undocumented; the emulator uses decisions_contract.ERROR_STATUS
(ASSUMED there, modelled on v1's). Codes for cases the docs name no code for are the emulator's assumption,
each marked where it is raised.
"""

from __future__ import annotations

import secrets
from typing import Any

from app.hume import decisions_contract as hume

from .config import EmulatorConfig

NOT_FOUND = "not_found"  # ASSUMED: a run id Hume does not know answers 404 (R/runs/get.md); its code is unseen
PAYMENT_REQUIRED = "payment_required"  # ASSUMED code of the documented 402 (openapi/audio-decisions-api.json)
FORBIDDEN = "forbidden"  # ASSUMED code of the documented 403 (home/authentication)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Refusal(Exception):
    """A request the Audio Decisions service refuses."""

    def __init__(self, code: str, message: str, param: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.status = status or hume.ERROR_STATUS.get(code, 400)


def request_id() -> str:
    """Like the documented `req_01JB8XA3C5RD`: a prefix and Crockford base-32 characters."""
    return "req_" + "".join(secrets.choice(_CROCKFORD) for _ in range(12))


def error_body(code: str, message: str, param: str | None = None, rid: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if param is not None:
        body["param"] = param
    body["request_id"] = rid or request_id()
    return body


def refusal_body(refusal: Refusal, rid: str | None = None) -> dict[str, Any]:
    return error_body(refusal.code, refusal.message, refusal.param, rid)


def pointer(*tokens: str | int) -> str:
    """A JSON Pointer (RFC 6901): `~` and `/` in a token escaped, as a question ID may hold either."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def unauthorized(key_sent: bool) -> dict[str, Any]:
    """The gateway's 401 (D/authentication; D/errors): no type or code."""
    body: dict[str, Any] = {"message": hume.GATEWAY_401_MESSAGE}
    if key_sent:
        body["request_id"] = request_id()
    return body


def account_refusal(config: EmulatorConfig, key: str | None, billed: bool) -> tuple[int, dict[str, Any]] | None:
    """403 for a key whose organization has no Audio Decisions access, 402 for one with no payment method
    (only on the billed endpoint, POST /v0/decisions/file: ASSUMED, since input tokens and runs are free,
    D/billing). Both in the service's shape (ASSUMED: they pass the gateway)."""
    if key is None:
        return None
    if key in config.decisions_not_enabled_keys:
        return hume.FORBIDDEN_STATUS, error_body(
            FORBIDDEN, "Your organization does not have access to the Audio Decisions API, or this API key's "
            "permissions exclude it.")  # fmt: skip
    if billed and key in config.no_payment_method_keys:
        return hume.PAYMENT_REQUIRED_STATUS, error_body(
            PAYMENT_REQUIRED, "Your organization has no payment method on file, or has an unpaid invoice.")  # fmt: skip
    return None


def injected(status: int, message: str) -> dict[str, Any]:
    """The body of a fault injected at status (faults.py): as the gateway or the service would send it."""
    if status == 401:
        return {"message": hume.GATEWAY_401_MESSAGE}
    if status == 429:
        return {"message": hume.GATEWAY_429_MESSAGE}
    code = hume.BUSY_CODE if status in (503, 529) else ("internal_error" if status >= 500 else "message_invalid")
    return error_body(code, message)
