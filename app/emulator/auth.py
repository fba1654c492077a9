"""Hume's credential checks: ``X-Hume-Api-Key`` everywhere, bearer tokens for TTS, EVI and v1 expression."""

from __future__ import annotations

import time
from typing import Any

from .expression_errors import auth_error_body
from .state import EmulatorState

V1_PREFIX = "/v1/expression"

# Hume sits behind an Apigee gateway; these bodies mirror its fault format (our assumption,
# the exact text is not in HUME.md).
MISSING_KEY: dict[str, Any] = {
    "fault": {
        "faultstring": "Failed to resolve API Key variable request.header.X-Hume-Api-Key",
        "detail": {"errorcode": "steps.oauth.v2.FailedToResolveAPIKey"},
    }
}
INVALID_KEY: dict[str, Any] = {
    "fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}
}
INVALID_TOKEN: dict[str, Any] = {
    "fault": {"faultstring": "Invalid access token", "detail": {"errorcode": "oauth.v2.InvalidAccessToken"}}
}


def key_ok(state: EmulatorState, key: str | None) -> bool:
    if not key:
        return False
    expected = state.config.api_key
    return expected is None or key == expected


def token_ok(state: EmulatorState, token: str) -> bool:
    expiry = state.tokens.get(token)
    return expiry is not None and expiry > time.time()


def check(state: EmulatorState, path: str, headers: dict[str, str]) -> dict[str, Any] | None:
    """None when the request may proceed, else the 401 body."""
    v1 = path.startswith(V1_PREFIX)
    bearer_allowed = v1 or path.startswith(("/v0/tts", "/v0/evi"))
    needs_auth = bearer_allowed or path.startswith("/v0/")
    if not needs_auth:
        return None
    key = headers.get("x-hume-api-key")
    if key is not None:
        if key_ok(state, key):
            return None
        return auth_error_body("Invalid API key.", with_request_id=True) if v1 else INVALID_KEY
    authz = headers.get("authorization", "")
    if bearer_allowed and authz.lower().startswith("bearer "):
        if token_ok(state, authz[7:].strip()):
            return None
        return auth_error_body("Invalid access token.", with_request_id=False) if v1 else INVALID_TOKEN
    return auth_error_body("No API key or access token.", with_request_id=False) if v1 else MISSING_KEY
