"""GET /api/hume/auth: a Hume access token for a browser frontend, cached until near expiry. What it was for
(EVI and TTS in the browser) ended at Hume on 2026-11-13; it answers what Hume's token endpoint answers, and
410 `hume_retired` when that endpoint is gone (404/410)."""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.hume_failures import hume_failure
from app.api.request_helpers import JSON, authorize, deps
from app.errors import AppError, HumeRetired
from app.hume.errors import HumeError, HumeSunsetError


class AccessToken(msgspec.Struct, rename="camel"):
    """A Hume access token for a browser frontend."""

    access_token: str
    expires_in: Annotated[int, Meta(ge=0, description="seconds it stays valid, rounded down")]


class NotConfigured(AppError):
    """Access tokens need HUME_SECRET_KEY (with HUME_API_KEY); this server has none."""

    status = 503
    code = "not_configured"


async def hume_auth(request: Request) -> Response:
    await authorize(request, "token")
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
