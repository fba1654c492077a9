"""Liveness, readiness and Prometheus metrics (the worker's metrics server serves /healthz and /metrics too)."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.responses import JSON, deps
from app.core import metrics
from app.store import operator_gauges


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
    readings = await operator_gauges.read(deps(request).sessionmaker)
    return Response(metrics.exposition(readings), media_type=metrics.CONTENT_TYPE)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", prometheus, methods=["GET"]),
]
