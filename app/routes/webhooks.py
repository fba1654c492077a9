"""Hume's callbacks. Verified before parsing; stored and enqueued in one transaction; acknowledged fast."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import jobs
from app.http import JSON, deps, read_body

# Headers worth keeping with an event for audit; never Authorization or cookies.
_KEPT_HEADERS = ("content-type", "user-agent", "x-hume-ai-webhook-timestamp", "x-hume-ai-webhook-signature")


def kept_headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}


async def hume_batch(request: Request) -> Response:
    d = deps(request)
    body = await read_body(request, d.settings.max_webhook_body_bytes)
    accepted = await jobs.accept_batch_callback(
        d,
        job_id=request.query_params.get("job_id"),
        token=request.query_params.get("token"),
        body=body,
        headers=kept_headers(request),
    )
    if accepted.duplicate:
        return JSON({"status": "duplicate"}, status_code=200)
    return JSON({"status": "accepted", "event_id": accepted.event_id}, status_code=202)


routes = [Route("/v1/webhooks/hume/batch", hume_batch, methods=["POST"])]
