"""GET /api/hume/auth: a Hume access token for a browser frontend (EVI, TTS), cached until near expiry."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.request_helpers import JSON, authorize, deps
from app.errors import AppError, BadGateway
from app.hume.errors import HumeError


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
    except HumeError as exc:
        # Our own wording only: Hume's body stays out of the answer (and out of the logs).
        raise BadGateway(f"could not get an access token from Hume: {exc}") from None
    # Rounded down: a frontend that trusts expiresIn must never hold a token Hume already refuses.
    return JSON(
        {"accessToken": token, "expiresIn": max(0, math.floor(remaining))},
        headers={"Cache-Control": "no-store"},
    )


routes = [Route("/api/hume/auth", hume_auth, methods=["GET"])]
