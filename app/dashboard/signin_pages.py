"""Signing in with an API key (read scope) and out again; the cookie holds the key's id, never the key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.request_helpers import deps
from app.dashboard import session as sessions
from app.dashboard.rendering import HEADERS, PREFIX, Ui, Viewer, read_form
from app.store import api_keys


def _safe_next(raw: str | None) -> str:
    """Only a dashboard path: never an absolute or protocol-relative URL (an open redirect)."""
    if raw and raw.startswith(PREFIX + "/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return f"{PREFIX}/jobs"


def signin_form(ui: Ui, request: Request, *, status: int = 200, error: str | None = None) -> Response:
    return ui.render(
        request, "signin.html", status, viewer=None, error=error,
        reason=request.query_params.get("reason"), next=_safe_next(request.query_params.get("next")),
    )  # fmt: skip


async def signin(ui: Ui, request: Request) -> Response:
    if request.method == "GET":
        return signin_form(ui, request)
    fields = await read_form(request)
    key = fields.get("key", "").strip()
    if not key or "\x00" in key:
        return signin_form(ui, request, status=422, error="Enter an API key.")
    async with deps(request).sessionmaker() as db:
        principal = await api_keys.find(db, key)
    if principal is None:
        return signin_form(ui, request, status=401, error="That API key is unknown or revoked.")
    if "read" not in principal.grants:
        return signin_form(ui, request, status=403, error="That API key lacks the read scope the dashboard needs.")
    response = RedirectResponse(_safe_next(fields.get("next")), status_code=303, headers=HEADERS)
    response.set_cookie(
        sessions.COOKIE, sessions.new(ui.secret, principal.key_id), max_age=sessions.SESSION_TTL_S, path=PREFIX,
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


async def signout(ui: Ui, request: Request, viewer: Viewer) -> Response:
    await ui.form(request, viewer)
    response = RedirectResponse(f"{PREFIX}/signin?reason=Signed+out.", status_code=303, headers=HEADERS)
    response.delete_cookie(sessions.COOKIE, path=PREFIX)
    return response
