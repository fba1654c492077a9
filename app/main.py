"""The composition root: create_app(settings) wires routes, errors, middleware and the lifespan.

Nothing is created at import. The lifespan owns the engine, the Hume gateway, the queue and (unless
RUN_WORKER=false) an in-process worker; with no Hume credentials it also runs the built-in emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import procrastinate.exceptions
import psycopg
import sqlalchemy.exc
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs, metrics, openapi, routes
from app.config import Settings
from app.deps import Deps
from app.errors import AppError
from app.http import JSON
from app.hume.callbacks import CallbackFormatError
from app.hume.errors import HumeError, HumeTransientError
from app.hume.gateway import HumeGateway
from app.hume.predictions import PredictionFormatError
from app.hume.tokens import TokenProvider
from app.hume.tts import HumeTts
from app.routes.auth import cors_middleware
from app.store.db import make_engine, make_sessionmaker
from app.tts import TtsService
from app.worker import make_queue, run_worker

log = structlog.get_logger(__name__)

EMULATOR_API_KEY = "emulator-dev-key"  # the built-in emulator's key, not a secret
EMULATOR_SECRET_KEY = "emulator-dev-secret"  # noqa: S105  # the emulator token endpoint's, not a secret


def _error(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSON:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSON({"error": body}, status_code=status, headers=headers)


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return _error(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)


async def _format_error(request: Request, exc: Exception) -> Response:
    return _error(400, "bad_payload", str(exc))


async def _database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", error=type(exc).__name__, path=request.url.path)
    return _error(503, "unavailable", "database unavailable; retry later", headers={"Retry-After": "5"})


async def _hume_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HumeError)
    if isinstance(exc, HumeTransientError):
        retry = str(int(exc.retry_after or 5))
        return _error(503, "hume_unavailable", str(exc), headers={"Retry-After": retry})
    return _error(502, "hume_error", str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path)
    return _error(500, "internal", "internal error")


class RequestLog:
    """One log line and one metrics sample per request (pure ASGI: never touches the body stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], template, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(template).observe(elapsed)
            log.info("request", method=scope["method"], path=scope["path"], status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.clear_contextvars()


async def _start_emulator(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    from app import emulator  # the emulator is optional at runtime: only imported when used

    config = emulator.EmulatorConfig(api_key=EMULATOR_API_KEY, secret_key=EMULATOR_SECRET_KEY)
    server = uvicorn.Server(
        uvicorn.Config(
            emulator.create_app(config), host="127.0.0.1", port=settings.emulator_port, log_level="warning",
            lifespan="on",
        )
    )  # fmt: skip
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    logs.configure(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if settings.database_url is None:
            raise RuntimeError("DATABASE_URL is not set (`python -m app run` starts an embedded Postgres)")
        emulator_server = None
        if settings.uses_emulator:
            emulator_server = await _start_emulator(settings)
            base_url = f"http://127.0.0.1:{settings.emulator_port}"
            api_key = EMULATOR_API_KEY
            secret_key: str | None = EMULATOR_SECRET_KEY
            log.info("using the built-in Hume emulator", url=base_url)
        else:
            base_url = settings.hume_base_url or "https://api.hume.ai"
            api_key = settings.hume_api_key or ""
            secret_key = settings.hume_secret_key
        engine = make_engine(settings.database_url)
        gateway = HumeGateway(api_key=api_key, base_url=base_url, max_retries=settings.hume_max_retries)
        queue = make_queue(settings.database_url, settings)
        await queue.open_async()
        sessionmaker = make_sessionmaker(engine)
        tokens = None
        if secret_key:
            tokens = TokenProvider(
                api_key=api_key,
                secret_key=secret_key,
                base_url=base_url,
                refresh_margin_s=settings.hume_token_refresh_margin_s,
            )
        hume_tts = HumeTts(api_key=api_key, base_url=base_url)
        tts = TtsService(hume=hume_tts, sessionmaker=sessionmaker, max_bytes=settings.tts_cache_max_bytes)
        deps = Deps(settings=settings, sessionmaker=sessionmaker, gateway=gateway, queue=queue, tokens=tokens, tts=tts)
        worker = None
        if settings.run_worker:
            worker = asyncio.create_task(run_worker(deps))
        try:
            yield {"deps": deps}
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(worker, timeout=15)
            await queue.close_async()
            await gateway.aclose()
            await tts.aclose()
            await hume_tts.aclose()
            if tokens is not None:
                await tokens.aclose()
            await engine.dispose()
            if emulator_server is not None:
                server, task = emulator_server
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=5)

    handlers: dict[Any, Any] = {
        AppError: _app_error,
        HTTPException: _http_error,
        CallbackFormatError: _format_error,
        PredictionFormatError: _format_error,
        HumeError: _hume_error,
        sqlalchemy.exc.OperationalError: _database_down,
        sqlalchemy.exc.InterfaceError: _database_down,
        sqlalchemy.exc.TimeoutError: _database_down,  # pool exhausted while connections hang
        procrastinate.exceptions.ConnectorException: _database_down,  # a defer when the database went away
        psycopg.OperationalError: _database_down,
        OSError: _database_down,
        Exception: _unexpected,
    }
    return Starlette(
        routes=[*routes.routes(), *openapi.routes],
        middleware=[Middleware(RequestLog), *cors_middleware(settings)],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
