"""Thin HTTP handlers, one module per resource; `routes()` is the table create_app mounts."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.dashboard import dashboard_routes
from app.routes import admin, analytics, auth, evi, health, jobs, tts, webhooks


def routes() -> list[BaseRoute]:
    return [
        *health.routes, *jobs.routes, *webhooks.routes, *evi.routes, *auth.routes, *tts.routes, *analytics.routes,
        *admin.routes, *dashboard_routes.routes(),
    ]  # fmt: skip
