"""One log line and one metrics sample per request."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import metrics

log = structlog.get_logger(__name__)


class RequestLog:
    """One log line and one metrics sample per request (pure ASGI: never touches the body stream); what a
    route binds to structlog's context (a webhook's outcome and ids) rides on that line. Server errors
    and refused webhook deliveries log as warnings."""

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
            refused = structlog.contextvars.get_contextvars().get("outcome") in {"rejected", "unavailable"}
            (log.warning if status >= 500 or refused else log.info)(
                "request", method=scope["method"], path=scope["path"], status=status, ms=round(elapsed * 1000, 2)
            )
            structlog.contextvars.clear_contextvars()
