"""Issue 22, items 6 and 9 in a real browser: a link (or an image) on another site never signs the viewer out;
/docs renders under its Content-Security-Policy and keeps no pasted key in localStorage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.dashboard import session as sessions
from tests.asgi_server import serve
from tests.browser.conftest import sync_key
from tests.browser.test_dashboard import signed_in_page
from tests.conftest import Service


@contextlib.contextmanager
def other_site(target: str) -> Iterator[str]:
    """A page on another site (`localhost`, where the service is `127.0.0.1`: two sites to the browser) with a
    link to the dashboard and an image that requests it."""

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(
            f'<!doctype html><title>elsewhere</title><img src="{target}" alt="">'
            f'<a id="go" href="{target}">the report</a>'
        )

    with serve(Starlette(routes=[Route("/", page)])) as port:
        yield f"http://localhost:{port}/"


def session_cookies(context: Any) -> list[dict[str, Any]]:
    return [c for c in context.cookies() if c["name"] == sessions.COOKIE]


def test_a_link_from_another_site_opens_the_dashboard_signed_in(service: Service, browser: Any) -> None:
    key = sync_key(service.database_url, ["read"], name="viewer")
    page, _ = signed_in_page(browser, service, key)
    [cookie] = session_cookies(page.context)
    with other_site(f"{service.url}/dashboard/jobs") as elsewhere:
        page.goto(elsewhere)
        page.wait_for_load_state("networkidle")  # the image's request (sent without the cookie) is answered
        assert session_cookies(page.context) == [cookie]
        page.click("#go")
        page.wait_for_load_state()
        assert page.url == f"{service.url}/dashboard/jobs", page.url
        assert page.locator("h1").first.inner_text() != "Sign in"
    assert session_cookies(page.context) == [cookie]
    assert cookie["sameSite"] == "Lax" and cookie["httpOnly"]  # sent on a link from elsewhere, never on a post
    page.context.close()


def test_docs_render_under_their_policy_and_keep_no_key(service: Service, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{service.url}/docs")
    page.wait_for_selector(".opblock")
    page.click("button.authorize")
    page.fill("#auth-bearer-value", service.key)
    page.click(".modal-ux button.authorize")
    page.wait_for_selector(".modal-ux button:has-text('Logout')")
    stored = page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
    assert service.key not in stored, stored
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
