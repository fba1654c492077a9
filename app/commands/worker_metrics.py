"""A worker's own small HTTP server on METRICS_PORT: the API's /healthz and /metrics, nothing else, in the
worker's event loop (so /metrics reads the gauges through the worker's own pool)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from app.commands.errors import CommandError
from app.commands.startup_banner import why_port_unusable
from app.core import background_server
from app.deps import Deps
from app.web import health_routes

PATHS = ("/healthz", "/metrics")


def metrics_app(deps: Deps) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"deps": deps}

    routes = [route for route in health_routes.routes if getattr(route, "path", None) in PATHS]
    return Starlette(routes=routes, lifespan=lifespan)


class _SignalFreeServer(uvicorn.Server):
    """uvicorn would take SIGINT/SIGTERM for itself; the worker loop owns them and stops this server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def check_port(host: str, port: int) -> None:
    """One line naming METRICS_PORT when it is taken (uvicorn would exit the whole process instead)."""
    why = why_port_unusable(host, port)
    if why is not None:
        raise CommandError(f"port {port} on {host} {why}: set METRICS_PORT to a free port")


@contextlib.asynccontextmanager
async def serving(deps: Deps, host: str, port: int) -> AsyncIterator[None]:
    """/healthz and /metrics on host:port while the block runs."""
    server = _SignalFreeServer(
        uvicorn.Config(metrics_app(deps), host=host, port=port, log_level="warning", lifespan="on")
    )
    failure = f"the metrics server could not listen on {host}:{port} (METRICS_PORT)"
    async with background_server.running(server, lambda: CommandError(failure, 1)):
        yield
