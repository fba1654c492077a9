"""The Starlette application: routes, plus the middleware that counts, injects faults and authenticates."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence

import httpx
import orjson
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from . import (
    auth,
    batch,
    control,
    decisions,
    decisions_errors,
    expression_api,
    expression_runs,
    origins,
    realtime_audio,
    realtime_control,
    realtime_video,
    sample_media,
)
from .config import EmulatorConfig
from .expression_errors import auth_error_body, code_for_status, error_body
from .rate_limit import RATE_LIMITED_BODY
from .state import EmulatorState

# HUME.md §0: "June 14, 2026: last day to use the API"; the SDK's release notes: "its sunset on 6/15/2026".
SUNSET_MESSAGE = (
    "The batch Expression Measurement API (v0) ended on 2026-06-15 (2026-06-14 was the last day to use it) "
    "and is no longer available."
)


async def _send_json(send: Send, status: int, body: object, headers: dict[str, str] | None = None) -> None:
    payload = orjson.dumps(body)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    for k, v in (headers or {}).items():
        raw_headers.append((k.lower().encode(), v.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _fault_body(path: str, status: int) -> object:
    message = f"Injected fault: HTTP {status}"
    if path.startswith(auth.DECISIONS_PREFIX):
        return decisions_errors.injected(status, message)
    if path.startswith(auth.V1_PREFIX):
        # The v1 SDK parses error bodies into its models: a bare {"message"} would fail as ParsingError.
        # A 401 comes from the gateway, without type/code (HUME-V1-FACTS §1).
        return auth_error_body(message, with_request_id=False) if status == 401 else error_body(
            code_for_status(status), message)  # fmt: skip
    return {"message": message}


class HumeMiddleware:
    """Per request: count it by route template, apply faults, then check credentials."""

    def __init__(self, app: ASGIApp, state: EmulatorState, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = [r for r in routes if isinstance(r, Route | WebSocketRoute)]

    def template(self, path: str) -> str:
        for route in self.routes:
            if route.path_regex.match(path):
                return route.path
        return path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        server = scope.get("server")
        misdirected = None
        if scope["type"] in ("http", "websocket"):
            served = origins.served_at(state.origins, server[0], server[1]) if server else None
            misdirected = origins.wrong_host(served, scope["path"])
        if misdirected is not None and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake is refused
            return
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["type"] == "websocket":
            await self.handshake(scope, receive, send)
            return
        method: str = scope["method"]
        if misdirected is not None:
            await _send_json(send, 404, misdirected)
            return
        template = self.template(path)
        with state.lock:
            state.calls[f"{method} {template}"] += 1
        faults = state.faults
        if faults.sunset and path.startswith("/v0/batch"):
            await _send_json(send, faults.sunset_status, {"message": SUNSET_MESSAGE})
            return
        rule = faults.take(method, path, template)
        if rule is not None:
            if rule.delay_s > 0:
                await asyncio.sleep(rule.delay_s)
            if rule.status is not None:
                headers = {}
                if rule.retry_after is not None:
                    # HTTP allows whole seconds only; round up so clients never retry early.
                    headers["retry-after"] = str(math.ceil(rule.retry_after))
                body = rule.body if rule.body is not None else _fault_body(path, rule.status)
                await _send_json(send, rule.status, body, headers)
                return
        refused = self.admit(scope, path)
        if refused is not None:
            await _send_json(send, *refused)
            return
        await self.app(scope, receive, send)

    def admit(self, scope: Scope, path: str) -> tuple[int, object, dict[str, str]] | None:
        """None when the credentials and the organization's request rate let the request in, else the refusal."""
        state = self.state
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        denied = auth.check(state, path, headers)
        if denied is not None:
            return denied[0], denied[1], {}
        owner = auth.organization(state, headers)
        per_minute = state.config.requests_per_minute
        if per_minute is not None and owner is not None and auth.needs_auth(path):
            wait = state.requests.admit(owner, per_minute)
            if wait is not None:
                return 429, RATE_LIMITED_BODY, {"retry-after": str(wait)}
        return None

    async def handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: counted, and authenticated once, here (HUME-V1-FACTS §1: realtime sends its
        credential on the handshake only). A refusal is the HTTP answer an HTTP request would get (the SDK turns
        a 401 into "Websocket initialized with invalid credentials"), or a bare refusal from a server without
        ASGI's websocket.http.response extension."""
        path: str = scope["path"]
        with self.state.lock:
            self.state.calls[f"GET {self.template(path)}"] += 1
        refused = self.admit(scope, path)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, body, headers = refused
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        payload = orjson.dumps(body)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
        await send({"type": "websocket.http.response.body", "body": payload})


def create_app(config: EmulatorConfig) -> Starlette:
    """A fresh emulator (its own in-memory state) as an ASGI application."""
    from . import evi, tokens, tts  # late: these import heavier helpers

    state = EmulatorState(config=config)
    state.faults.sunset_status = config.sunset_status

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as client:
            state.http = client
            evi.seed_chats(state)
            try:
                yield
            finally:
                state.cancel_tasks()
                if state.tasks:
                    await asyncio.gather(*state.tasks, return_exceptions=True)
                state.http = None

    routes: list[BaseRoute] = [
        *batch.routes,
        *expression_api.routes,
        *expression_runs.routes,
        *decisions.routes,
        *realtime_audio.routes,
        *realtime_video.routes,
        *realtime_control.routes,
        *tokens.routes,
        *tts.routes,
        *evi.routes,
        *control.routes,
        *sample_media.routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.emu = state
    app.add_middleware(HumeMiddleware, state=state, routes=routes)
    return app
