"""POST /v1/session-tokens (scope `session`): a short-lived token a browser opens one live session with;
WS /v1/sessions/audio and /v1/sessions/video: the relay to Hume's realtime API (see service.py).

Why tokens are stored (hashed, single use) rather than signed: a token rides in a WebSocket URL, where
proxies and access logs may keep it. Redeemed by one UPDATE that marks it used, a copy seen later opens
nothing; the minting key is checked again when the socket opens (revoked since: refused), across every
process without a shared signing secret to distribute. It costs one round trip at open, next to the
Hume handshake that follows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from app.api.auth import authorize
from app.api.bodies import parse_json_object, read_body
from app.api.json_limits import check_metadata
from app.api.responses import JSON, deps
from app.api.typed_input import body_struct
from app.core.times import iso
from app.deps import Deps
from app.sessions import service
from app.sessions.schemas import SessionTokenIn, SessionTokenOut, SessionUrls
from app.store import live_sessions


def ws_base(http_base: str) -> str:
    if http_base.startswith("https://"):
        return "wss://" + http_base.removeprefix("https://")
    return "ws://" + http_base.removeprefix("http://")


async def mint_token(request: Request) -> Response:
    principal = await authorize(request, service.SCOPE)
    d = deps(request)
    raw = await read_body(request, d.settings.max_body_bytes)
    given = body_struct(parse_json_object(raw), SessionTokenIn) if raw.strip() else SessionTokenIn()
    metadata = {} if given.metadata is None else check_metadata(given.metadata)
    job_id = uuid.uuid4()
    async with d.sessionmaker.begin() as session:
        token, expires_at = await live_sessions.mint(
            session, api_key_id=principal.key_id, tenant=principal.tenant, job_id=job_id, metadata=metadata,
            ttl_s=d.settings.session_token_ttl_s,
        )  # fmt: skip
    base = ws_base(d.settings.callback_base_url)
    query = f"?token={quote(token)}"
    left = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    body = SessionTokenOut(
        token=token, expires_in=left, expires_at=iso(expires_at) or "", job_id=str(job_id),
        urls=SessionUrls(audio=f"{base}/v1/sessions/audio{query}", video=f"{base}/v1/sessions/video{query}"),
        subprotocol=f"{service.TOKEN_SUBPROTOCOL}{token}",
    )  # fmt: skip
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
