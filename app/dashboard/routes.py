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
                Route("/signout", ui.page(bound(signin_pages.signout)), methods=["POST"], name="dashboard_signout"),
                Route("/jobs", ui.page(bound(jobs_pages.jobs_list)), methods=["GET"], name="dashboard_jobs"),
                Route(
                    "/jobs/status.json",
                    ui.page(bound(jobs_pages.jobs_status), json=True),
                    methods=["GET"],
                    name="dashboard_jobs_status",
                ),
                Route("/demo", ui.page(bound(jobs_pages.start_demo)), methods=["POST"], name="dashboard_demo"),
                Route("/jobs/{job_id}", ui.page(bound(job_page.job_page)), methods=["GET"], name="dashboard_job"),
                Route(
                    "/jobs/{job_id}/timeline",
                    ui.page(bound(job_page.timeline_fragment)),
                    methods=["GET"],
                    name="dashboard_timeline",
                ),
                Route("/top", ui.page(bound(insight_pages.top_page)), methods=["GET"], name="dashboard_top"),
                Route("/usage", ui.page(bound(usage_page.usage_page)), methods=["GET"], name="dashboard_usage"),
                Route(
                    "/question-sets",
                    ui.page(bound(question_set_pages.question_sets_page)),
                    methods=["GET"],
                    name="dashboard_question_sets",
                ),
                Route(
                    "/question-sets/{set_id}",
                    ui.page(bound(question_set_pages.question_set_page)),
                    methods=["GET"],
                    name="dashboard_question_set",
                ),
                Route("/live", ui.page(bound(live_page.live_page)), methods=["GET"], name="dashboard_live"),
                Route(
                    "/live/token",
                    ui.page(bound(live_page.live_token), json=True),
                    methods=["POST"],
                    name="dashboard_live_token",
                ),
                Route(
                    "/operators",
                    ui.page(bound(insight_pages.operators_page)),
                    methods=["GET"],
                    name="dashboard_operators",
                ),
                Route(
                    "/events/{event_id}/replay",
                    ui.page(bound(insight_pages.replay)),
                    methods=["POST"],
                    name="dashboard_replay",
                ),
                Mount("/static", StaticFiles(directory=STATIC), name="dashboard_static"),
            ],
        )
    ]
