"""Hume's EVI webhooks: verified over the raw bytes, stored and enqueued in one transaction, acked fast."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import evi_chats
from app.http import JSON, deps, read_body


async def hume_evi(request: Request) -> Response:
    d = deps(request)
    body = await read_body(request, d.settings.max_webhook_body_bytes)
    accepted = await evi_chats.accept_webhook(d, body=body, headers=request.headers, now=time.time())
    if accepted.duplicate:
        return JSON({"status": "duplicate"}, status_code=200)
    return JSON({"status": "accepted", "event_id": accepted.event_id}, status_code=202)


routes = [Route("/v1/webhooks/hume/evi", hume_evi, methods=["POST"])]
