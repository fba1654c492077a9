"""``POST /_emulator/realtime/end``: end live realtime sessions from the server's side, as Hume can, so that
clients (and the service's relay) can be tested against it.

Body (all optional): `{"session_id": id, "error": "internal_error"}`. Without `error`, the sessions end as in a
shutdown (`session.closed` reason `server_shutdown`, close code 1001); with `error: internal_error`, audio
sessions end as after a failed measurement (`error`, `session.closed` reason `error`, close code 1008: the SDK
reconnects after an audio internal_error, HUME-V1-FACTS §5). Video sessions end on measurement failures only
after five in a row, so the error applies to audio sessions alone (video: JPEGs marked `fail`).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .responses import emu, json, read_json


async def end_sessions(request: Request) -> Response:
    try:
        body: Any = await read_json(request) or {}
    except (orjson.JSONDecodeError, ValueError) as exc:
        return json({"error": f"body: {exc}"}, status_code=400)
    if not isinstance(body, dict) or set(body) - {"session_id", "error"}:
        return json({"error": "body: an object with optional `session_id` and `error`"}, status_code=400)
    error = body.get("error")
    if error not in (None, "internal_error"):
        return json({"error": "error: only `internal_error` (or none, for a shutdown)"}, status_code=400)
    state = emu(request)
    with state.lock:
        sessions = [s for s in state.sessions.values() if body.get("session_id") in (None, s.run.run_id)]
    if error is not None:
        sessions = [s for s in sessions if s.endpoint == "audio"]
    for session in sessions:
        await session.end_by_server(error)
    return json({"ended": [s.run.run_id for s in sessions]})


routes = [Route("/_emulator/realtime/end", end_sessions, methods=["POST"])]
