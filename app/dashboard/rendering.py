"""What every dashboard page shares: templates, the session check, CSRF, and errors shown as pages.

`Ui.page(handler)` turns `handler(request, viewer)` into an endpoint that signs the viewer in from the
cookie (or sends them to the sign-in page saying why) and renders any client error as a page with the
error's status, never a stack trace.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.api.bodies import read_body
from app.api.responses import deps
from app.dashboard import session as sessions
from app.errors import AppError, Forbidden
from app.store import api_keys
from app.store.api_keys import DEFAULT_TENANT, Principal

log = structlog.get_logger(__name__)

PREFIX = "/dashboard"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none';"
        " form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Viewer:
    key_id: uuid.UUID
    name: str
    scopes: frozenset[str]
    csrf: str
    tenant: str = DEFAULT_TENANT

    @property
    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, name=self.name, scopes=self.scopes, tenant=self.tenant)

    def can(self, scope: str) -> bool:
        """The API's own grant table decides, so a page never allows what the API would refuse."""
        return scope in self.principal.grants

    @property
    def read_tenant(self) -> str | None:
        """The tenant whose jobs the pages show, or None for every tenant (analyst, admin)."""
        return self.principal.read_tenant


Handler = Callable[[Request, Viewer], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Ui:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(prefix=PREFIX, request=request, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def error_page(self, request: Request, status: int, title: str, message: str, viewer: Viewer | None) -> Response:
        return self.render(request, "error.html", status, title=title, message=message, viewer=viewer)

    async def viewer(self, request: Request) -> Viewer:
        """The signed-in viewer; SessionError when there is none (also for a revoked or downgraded key)."""
        session = sessions.decode(self.secret, request.cookies.get(sessions.COOKIE))
        async with deps(request).sessionmaker() as db:
            key = await api_keys.session_key(db, session.key_id, session.sid_hash)
        if key is None:
            raise sessions.SessionError("ended")
        viewer = Viewer(key_id=session.key_id, name=key.name, scopes=key.scopes, csrf=session.csrf, tenant=key.tenant)
        if not viewer.can("read"):
            raise sessions.SessionError("no_read")
        request.state.dashboard_session = session
        return viewer

    def to_signin(self, request: Request, reason: str) -> Response:
        """`reason` is a code of sessions.NOTICES. A cookie that was sent and failed is deleted; none sent is
        no reason to delete one (a request that arrives without it may come from another site)."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": target, "reason": reason}, quote_via=quote)
        response = RedirectResponse(f"{PREFIX}/signin?{query}", status_code=303, headers=HEADERS)
        if sessions.COOKIE in request.cookies:
            response.delete_cookie(sessions.COOKIE, path=PREFIX)
        return response

    def page(self, handler: Handler, *, json: bool = False) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                viewer = await self.viewer(request)
            except sessions.SessionError as exc:
                if json:
                    return HTMLResponse(str(exc), status_code=401, headers=HEADERS)
                return self.to_signin(request, exc.code)
            try:
                return await handler(request, viewer)
            except AppError as exc:
                title = {403: "Not allowed", 404: "Not found", 409: "Not possible now"}.get(exc.status, "Bad request")
                return self.error_page(request, exc.status, title, exc.message, viewer)

        endpoint.__name__ = handler.__name__
        return endpoint

    async def form(self, request: Request, viewer: Viewer) -> dict[str, str]:
        """A posted urlencoded form, refused (403) unless it carries the session's CSRF token."""
        fields = await read_form(request)
        if not sessions.csrf_ok(sessions.Session(viewer.key_id, 0, viewer.csrf), fields.get("csrf")):
            raise Forbidden("The form's security token is missing or stale; reload the page and try again.")
        return fields


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (small: these forms hold a key or an id), parsed without a multipart library."""
    body = await read_body(request, 64 << 10)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
