"""Signing in with an API key (read scope) and out again; the cookie holds the key's id, never the key.

Wrong keys count against the client's address like wrong API keys do (`auth_throttle`): past the limit the
form answers 429 without looking the key up."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api import auth_throttle
from app.api.responses import deps
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
        reason=sessions.NOTICES.get(request.query_params.get("reason") or ""),
        next=_safe_next(request.query_params.get("next")),
    )  # fmt: skip


async def signin(ui: Ui, request: Request) -> Response:
    if request.method == "GET":
        return signin_form(ui, request)
    fields = await read_form(request)
    key = fields.get("key", "").strip()
    if not key or "\x00" in key:
        return signin_form(ui, request, status=422, error="Enter an API key.")
    throttle = auth_throttle.for_app(request)
    client = auth_throttle.client_of(request)
    digest = api_keys.hash_key(key)
    admission = throttle.admit(client, digest)
    if admission.wait_s:
        response = signin_form(ui, request, status=429, error=auth_throttle.TooManyFailures(admission.wait_s).message)
        response.headers["Retry-After"] = str(admission.wait_s)
        return response
    principal = await api_keys.authenticate(deps(request).sessionmaker, digest)
    if principal is None:
        throttle.failed(client, held=admission.held)
        return signin_form(ui, request, status=401, error="That API key is unknown or revoked.")
    throttle.succeeded(digest, client, held=admission.held)
    if "read" not in principal.grants:
        return signin_form(ui, request, status=403, error="That API key lacks the read scope the dashboard needs.")
    response = RedirectResponse(_safe_next(fields.get("next")), status_code=303, headers=HEADERS)
    response.set_cookie(
        sessions.COOKIE, sessions.new(ui.secret, principal.key_id), max_age=sessions.SESSION_TTL_S, path=PREFIX,
        httponly=True, samesite="lax", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


async def signout(ui: Ui, request: Request, viewer: Viewer) -> Response:
    """Ends this session in every process (the cookie, copied or not, is refused from now on)."""
    await ui.form(request, viewer)
    session = request.state.dashboard_session
    assert isinstance(session, sessions.Session)
    async with deps(request).sessionmaker.begin() as db:
        await api_keys.end_session(db, session.sid_hash, datetime.fromtimestamp(session.expires_at, UTC))
    response = RedirectResponse(f"{PREFIX}/signin?reason=signed_out", status_code=303, headers=HEADERS)
    response.delete_cookie(sessions.COOKIE, path=PREFIX)
    return response
