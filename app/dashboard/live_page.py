"""The live page: the signed-in key's tenant measures the microphone (and the camera) in real time through
the relay (app/sessions), the measurements drawn as they come by static/live.js.

The page's script asks `POST /dashboard/live/token` (same origin, the session cookie plus the page's CSRF
token in the form body, as every dashboard POST) for a session token minted for the signed-in key by the same
rule as `POST /v1/session-tokens` (app/sessions/tokens.py), then opens the relay on this origin with the token
as a WebSocket subprotocol, so the token stays out of URLs and the page's connect-src stays 'self'.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.responses import JSON, deps
from app.dashboard.rendering import Ui, Viewer
from app.errors import AppError, Forbidden
from app.sessions import service as sessions_service
from app.sessions import tokens

SOURCE = {"source": "dashboard-live"}
"""The session job's metadata: sessions started here are told apart from a backend's (usage by metadata)."""


async def live_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    return ui.render(request, "live.html", viewer=viewer, can_stream=viewer.can(sessions_service.SCOPE))


async def live_token(ui: Ui, request: Request, viewer: Viewer) -> Response:
    """A session token for the signed-in key, as JSON (the script reads it); errors as the API's JSON."""
    headers = {"Cache-Control": "no-store"}
    try:
        await ui.form(request, viewer)
        if not viewer.can(sessions_service.SCOPE):
            raise Forbidden(f"this key lacks the '{sessions_service.SCOPE}' scope")
        body = await tokens.issue(deps(request), viewer.principal, dict(SOURCE))
    except AppError as exc:
        error = {"code": exc.code, "message": exc.message}
        return JSON({"error": error}, status_code=exc.status, headers=headers)
    return JSON(body, status_code=201, headers=headers)
