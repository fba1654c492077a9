"""The web application: every feature's routes, the error table, middleware, and a lifespan that owns
the resources `build_deps` makes (plus the built-in emulator and the in-process worker when configured).
Nothing is created at import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app import logs
from app.admin import routes as admin_routes
from app.analytics import routes as analytics_routes
from app.batch import routes as batch_routes
from app.config import Settings
from app.core import process_tuning
from app.dashboard import routes as dashboard_routes
from app.decisions import routes as decision_routes
from app.evi import routes as evi_routes
from app.jobs import routes as job_routes
from app.notifications import routes as notification_routes
from app.sessions import routes as session_routes
from app.tokens import routes as token_routes
from app.tts import routes as tts_routes
from app.usage import routes as usage_routes
from app.web import error_handlers, health_routes, openapi_document
from app.web.request_log import RequestLog
from app.web.webhook_lanes import WebhookLanes
from app.wiring import build_deps, built_in_emulator
from app.worker.task_queue import run_worker


def routes(settings: Settings) -> list[BaseRoute]:
    secret = settings.dashboard_secret.encode() if settings.dashboard_secret else None
    return [
        *health_routes.routes, *job_routes.routes, *analytics_routes.routes, *batch_routes.routes,
        *evi_routes.routes, *token_routes.routes, *tts_routes.routes, *session_routes.routes,
        *admin_routes.routes, *notification_routes.routes, *usage_routes.routes, *decision_routes.routes,
        *openapi_document.routes,
        *dashboard_routes.routes(secret),
    ]  # fmt: skip


class NoCorsConfigured:
    """Without CORS_ALLOW_ORIGINS a browser's preflight would meet a bare 405; say what to set instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                message = (
                    f"Cross-origin requests from {headers['origin']} are not allowed: set CORS_ALLOW_ORIGINS "
                    "to the frontend's origin (comma-separated), or call this API from your backend."
                )
                body = {"error": {"code": "cors_not_allowed", "message": message}}
                await JSONResponse(body, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for browser frontends, only for the origins configured (none by default)."""
    if not settings.cors_allow_origins:
        return [Middleware(NoCorsConfigured)]
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key"],
            expose_headers=["x-cache", "x-request-id", "retry-after"],
            max_age=600,
        )
    ]


def create_app(settings: Settings | None = None, *, owns_process: bool = False) -> Starlette:
    """The application. `owns_process`: it is all its process serves (`serve`), so once started it may
    freeze the garbage collector's view of the process (see `process_tuning.settle`)."""
    settings = settings or Settings.from_env()
    logs.configure(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            if settings.uses_emulator:
                await stack.enter_async_context(built_in_emulator(settings))
            deps = await stack.enter_async_context(build_deps(settings))
            worker = asyncio.create_task(run_worker(deps)) if settings.run_worker else None
            if owns_process:
                process_tuning.settle()
            try:
                yield {"deps": deps}
            finally:
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await asyncio.wait_for(worker, timeout=15)

    return Starlette(
        routes=routes(settings),
        middleware=[
            Middleware(RequestLog),
            Middleware(WebhookLanes, routes=[*evi_routes.routes, *batch_routes.routes]),
            *cors_middleware(settings),
        ],
        exception_handlers=error_handlers.handlers(),
        lifespan=lifespan,
    )


def create_process_app() -> Starlette:
    """The factory each of WEB_CONCURRENCY's processes calls: settings from the environment, process owned."""
    return create_app(owns_process=True)
