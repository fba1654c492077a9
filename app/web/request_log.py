"""One log line and one metrics sample per request."""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs
from app.core import metrics

_REFUSED = frozenset({"rejected", "unavailable"})


class RequestLog:
    """One log line and one metrics sample per request (pure ASGI: never touches the body stream); what a
    route adds to the request's fields (logs.add_request_fields: a webhook's outcome and ids) rides on that
    line. Server errors and refused webhook deliveries log as warnings."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Bound once, with the configuration create_app has just made: through the module's lazy proxy every
        # line built a logger first. The metric children are kept for the same reason (labels() validates
        # and locks on every call); methods, route templates and statuses are few.
        self._log = structlog.get_logger(__name__).bind()
        self._samples: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = os.urandom(8).hex()
        fields: dict[str, Any] = {"request_id": request_id}
        token = logs.start_request(fields)

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
            method = scope["method"]
            samples = self._samples.get((method, template, status))
            if samples is None:
                samples = (
                    metrics.REQUESTS.labels(method, template, str(status)),
                    metrics.REQUEST_SECONDS.labels(template),
                )
                self._samples[method, template, status] = samples
            samples[0].inc()
            samples[1].observe(elapsed)
            refused = fields.get("outcome") in _REFUSED
            (self._log.warning if status >= 500 or refused else self._log.info)(
                "request", method=method, path=scope["path"], status=status, ms=round(elapsed * 1000, 2)
            )
            logs.end_request(token)
