"""The dashboard's route table: `routes()` is what the app mounts (a Mount at /dashboard, static files inside)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.dashboard import (
    insight_pages,
    job_page,
    jobs_pages,
    live_page,
    question_set_pages,
    signin_pages,
    usage_page,
)
from app.dashboard.rendering import PREFIX, Handler, Ui, Viewer

STATIC = Path(__file__).parent / "static"
PageFn = Callable[[Ui, Request, Viewer], Awaitable[Response]]


def routes(secret: bytes | None = None) -> list[BaseRoute]:
    """`secret` (DASHBOARD_SECRET) signs the session cookies; None draws one for this process (development)."""
    ui = Ui(secret if secret is not None else secrets.token_bytes(32))

    def bound(handler: PageFn) -> Handler:
        async def call(request: Request, viewer: Viewer) -> Response:
            return await handler(ui, request, viewer)

        call.__name__ = handler.__name__
        return call

    def page(path: str, handler: PageFn, name: str, *, method: str = "GET", json: bool = False) -> Route:
        """A page (or with `json`, a JSON read) for a signed-in viewer."""
        return Route(path, ui.page(bound(handler), json=json), methods=[method], name=f"dashboard_{name}")

    async def signin(request: Request) -> Response:
        return await signin_pages.signin(ui, request)

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/jobs", status_code=303)

    return [
        Mount(
            PREFIX,
            routes=[
                Route("/", home, methods=["GET"], name="dashboard_home"),
                Route("/signin", signin, methods=["GET", "POST"], name="dashboard_signin"),
                page("/signout", signin_pages.signout, "signout", method="POST"),
                page("/jobs", jobs_pages.jobs_list, "jobs"),
                page("/jobs/status.json", jobs_pages.jobs_status, "jobs_status", json=True),
                page("/demo", jobs_pages.start_demo, "demo", method="POST"),
                page("/jobs/{job_id}", job_page.job_page, "job"),
                page("/jobs/{job_id}/timeline", job_page.timeline_fragment, "timeline"),
                page("/top", insight_pages.top_page, "top"),
                page("/usage", usage_page.usage_page, "usage"),
                page("/question-sets", question_set_pages.question_sets_page, "question_sets"),
                page("/question-sets/{set_id}", question_set_pages.question_set_page, "question_set"),
                page("/live", live_page.live_page, "live"),
                page("/live/token", live_page.live_token, "live_token", method="POST", json=True),
                page("/operators", insight_pages.operators_page, "operators"),
                page("/events/{event_id}/replay", insight_pages.replay, "replay", method="POST"),
                Mount("/static", StaticFiles(directory=STATIC), name="dashboard_static"),
            ],
        )
    ]
