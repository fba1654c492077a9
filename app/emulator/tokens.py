"""``POST /oauth2-cc/token``: OAuth2 client-credentials access tokens (HUME.md section 4)."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import key_ok
from .responses import emu, json


def _oauth_error(status: int, code: str, description: str) -> Response:
    # RFC 6749 error shape; Hume's exact body is not documented.
    return json({"error": code, "error_description": description}, status_code=status)


async def issue_token(request: Request) -> Response:
    state = emu(request)
    authz = request.headers.get("authorization", "")
    if not authz.lower().startswith("basic "):
        return _oauth_error(401, "invalid_client", "Basic authentication with API key and secret key required")
    try:
        api_key, _, secret = base64.b64decode(authz[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return _oauth_error(401, "invalid_client", "Malformed Basic credentials")
    expected_secret = state.config.secret_key
    if not key_ok(state, api_key) or not secret or (expected_secret is not None and secret != expected_secret):
        return _oauth_error(401, "invalid_client", "Invalid API key or secret key")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    grant = form.get("grant_type", [""])[0]
    if grant != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    token = secrets.token_urlsafe(32)
    lifetime = state.config.token_lifetime_s
    now = time.time()
    # Expired tokens are dropped here so a long-running emulator does not accumulate them.
    for old, expiry in list(state.tokens.items()):
        if expiry <= now:
            state.tokens.pop(old, None)
            state.token_owners.pop(old, None)
    state.tokens[token] = now + lifetime
    state.token_owners[token] = api_key  # the token acts for this key's organization (auth.organization)
    return json({"access_token": token, "token_type": "bearer", "expires_in": lifetime})


routes = [Route("/oauth2-cc/token", issue_token, methods=["POST"])]
