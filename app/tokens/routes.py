"""GET /api/hume/auth: a Hume access token for a browser frontend, cached until near expiry. What it was for
(EVI and TTS in the browser) ended at Hume on 2026-11-13; it answers what Hume's token endpoint answers, and
410 `hume_retired` when that endpoint is gone (404/410).

The token is the deployment's, not a tenant's: Hume issues it for the whole account (HUME.md's status block:
"a short-lived token issued for your account"), so every key with the `token` scope, of any tenant, gets the
same one, and it spends the account outside any tenant's budget. HUME_TOKENS_ENABLED=false turns the route
off (404 `tokens_disabled`)."""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import authorize
from app.api.hume_failures import hume_failure
from app.api.responses import JSON, deps
from app.errors import AppError, HumeRetired
from app.hume.errors import HumeError, HumeSunsetError


class AccessToken(msgspec.Struct, rename="camel"):
    """A Hume access token for a browser frontend."""

    access_token: str
    expires_in: Annotated[int, Meta(ge=0, description="seconds it stays valid, rounded down")]


class TokensDisabled(AppError):
    """This deployment does not hand out Hume access tokens (HUME_TOKENS_ENABLED=false): a token opens the
    whole Hume account, whichever tenant asks for it."""

    status = 404
    code = "tokens_disabled"


class NotConfigured(AppError):
    """Access tokens need HUME_SECRET_KEY (with HUME_API_KEY); this server has none."""

    status = 503
    code = "not_configured"


async def hume_auth(request: Request) -> Response:
    await authorize(request, "token")
    if not deps(request).settings.hume_tokens_enabled:
        raise TokensDisabled()
    tokens = deps(request).tokens
    if tokens is None:
        raise NotConfigured()
    try:
        token, remaining = await tokens.get()
    except HumeSunsetError as exc:
        raise HumeRetired(f"could not get an access token from Hume: {exc}") from None
    except HumeError as exc:
        # Our own wording only (token_client never puts Hume's body in its errors): it stays out of the answer.
        raise hume_failure(exc, context="could not get an access token from Hume") from None
    # Rounded down: a frontend that trusts expiresIn must never hold a token Hume already refuses.
    return JSON(
        AccessToken(access_token=token, expires_in=max(0, math.floor(remaining))),
        headers={"Cache-Control": "no-store"},
    )


routes = [Route("/api/hume/auth", hume_auth, methods=["GET"])]
