"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import metrics
from app.api.request_helpers import JSON, deps
from app.store import inbox_events as inbox


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        async with deps(request).sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        return JSON({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    return JSON({"status": "ready", "database": "ok"})


async def prometheus(request: Request) -> Response:
    try:
        async with deps(request).sessionmaker() as session:
            metrics.QUEUE_DEPTH.set(await inbox.count_pending(session))
    except Exception:  # noqa: S110  # metrics must render even when the database is down
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", prometheus, methods=["GET"]),
]
