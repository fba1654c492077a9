"""Hume's credential checks: ``X-Hume-Api-Key`` everywhere, bearer tokens for TTS, EVI and v1 expression."""

from __future__ import annotations

import time
from typing import Any

from . import decisions_errors
from .expression_errors import auth_error_body, error_body
from .state import EmulatorState

V1_PREFIX = "/v1/expression"
DECISIONS_PREFIX = "/v0/decisions"
DECISIONS_BILLED = "/v0/decisions/file"

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


def needs_auth(path: str) -> bool:
    """Hume's API paths (every one takes a credential); not the token endpoint, control or sample media."""
    return path.startswith((V1_PREFIX, "/v0/"))


def organization(state: EmulatorState, headers: dict[str, str]) -> str | None:
    """Whose request this is: the API key, or the key a bearer token was issued for (the emulator has one
    organization per key). None without a credential."""
    key = headers.get("x-hume-api-key")
    if key:
        return key
    authz = headers.get("authorization", "")
    if authz.lower().startswith("bearer "):
        token = authz[7:].strip()
        return state.token_owners.get(token, token)
    return None


def check(state: EmulatorState, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    """None when the request may proceed, else the refusal's status and body."""
    denied = _authenticate(state, path, headers)
    if denied is not None:
        return 401, denied
    if path.startswith(DECISIONS_PREFIX):
        return decisions_errors.account_refusal(state.config, headers.get("x-hume-api-key"), path == DECISIONS_BILLED)
    if path.startswith(V1_PREFIX):
        owner = organization(state, headers)
        if owner is not None and (owner in state.config.v1_not_enabled_keys or not state.faults.v1_enabled(owner)):
            # HUME-V1-FACTS §1: 403 = the organization is not permitted to use the API (v1 is a limited release,
            # access by request, HUME.md §0); §5: code `forbidden`, in v1's error shape (it passed the gateway).
            return 403, error_body("forbidden", "Your organization is not enabled for the Expression Measurement "
                                                "API (limited release); contact Hume to request access.")  # fmt: skip
    return None


def _authenticate(state: EmulatorState, path: str, headers: dict[str, str]) -> dict[str, Any] | None:
    """None when the credential is good (or not needed), else the 401 body."""
    v1 = path.startswith(V1_PREFIX)
    bearer_allowed = v1 or path.startswith(("/v0/tts", "/v0/evi"))
    if not needs_auth(path):
        return None
    key = headers.get("x-hume-api-key")
    if path.startswith(DECISIONS_PREFIX):
        # D/authentication: X-Hume-Api-Key on every request (no tokens); the gateway's body, request_id only
        # when a key was sent and refused.
        return None if key_ok(state, key) else decisions_errors.unauthorized(key_sent=bool(key))
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
