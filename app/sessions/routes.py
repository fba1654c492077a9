"""POST /v1/session-tokens (scope `session`): a short-lived token a browser opens one live session with;
WS /v1/sessions/audio and /v1/sessions/video: the relay to Hume's realtime API (see service.py).

Why tokens are stored (hashed, single use) rather than signed: a token rides in a WebSocket URL, where
proxies and access logs may keep it. Redeemed by one UPDATE that marks it used, a copy seen later opens
nothing; the minting key is checked again when the socket opens (revoked since: refused), across every
process without a shared signing secret to distribute. It costs one round trip at open, next to the
Hume handshake that follows.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from app.api.auth import authorize
from app.api.bodies import parse_json_object, read_body
from app.api.json_limits import check_metadata
from app.api.responses import JSON, deps
from app.api.typed_input import body_struct
from app.deps import Deps
from app.sessions import service, tokens
from app.sessions.schemas import SessionTokenIn


async def mint_token(request: Request) -> Response:
    principal = await authorize(request, service.SCOPE)
    d = deps(request)
    raw = await read_body(request, d.settings.max_body_bytes)
    given = body_struct(parse_json_object(raw), SessionTokenIn) if raw.strip() else SessionTokenIn()
    metadata = {} if given.metadata is None else check_metadata(given.metadata)
    body = await tokens.issue(d, principal, metadata)
    return JSON(body, status_code=201, headers={"Cache-Control": "no-store"})


def _deps(websocket: WebSocket) -> Deps:
    value = websocket.state.deps
    assert isinstance(value, Deps)
    return value


async def audio_session(websocket: WebSocket) -> None:
    await service.serve(websocket, _deps(websocket), "audio")


async def video_session(websocket: WebSocket) -> None:
    await service.serve(websocket, _deps(websocket), "video")


routes: list[BaseRoute] = [
    Route("/v1/session-tokens", mint_token, methods=["POST"]),
    WebSocketRoute("/v1/sessions/audio", audio_session),
    WebSocketRoute("/v1/sessions/video", video_session),
]
