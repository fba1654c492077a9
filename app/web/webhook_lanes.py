"""Hume's webhook deliveries take a short path through the application.

They are the one route called at someone else's pace (every delivery Hume makes, retries included), and
a delivery is server to server: it has no use for CORS, and its path is known without searching the
route table. So it goes from the request log straight to its handler, and its errors through the same
error table as every other route. The handlers are the ones in the route table (OpenAPI documents them
from there); only the way to them is shorter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web import error_handlers

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class WebhookLanes:
    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.lanes = {route.path: route for route in routes if route.methods == {"POST"}}
        self.errors: dict[Any, ErrorHandler] = error_handlers.handlers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.lanes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the request log's label, as the router would set it
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            response = await self._error_handler(exc)(request, exc)
        await response(scope, receive, send)

    def _error_handler(self, exc: Exception) -> ErrorHandler:
        for kind in type(exc).__mro__:
            if kind in self.errors:
                return self.errors[kind]
        return self.errors[Exception]
