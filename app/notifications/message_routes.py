"""The delivery log: an endpoint's messages, one message's attempts, and sending a message again now."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.request_helpers import JSON, authorize, deps, id_param, path_id, query_int
from app.core.times import iso
from app.errors import NotFound
from app.notifications import redelivery
from app.notifications.endpoint_routes import SCOPE, owned_endpoint, owner
from app.store import webhook_messages
from app.store.tables import WebhookAttempt, WebhookMessage


def message_json(message: WebhookMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "msg_id": message.msg_id,
        "endpoint_id": str(message.endpoint_id),
        "job_id": str(message.job_id) if message.job_id else None,
        "type": message.event_type,
        "state": message.state,
        "attempts": message.attempts,
        "next_attempt_at": iso(message.next_attempt_at) if message.state == "pending" else None,
        "created_at": iso(message.created_at),
        "payload": message.payload,
    }


def attempt_json(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "at": iso(attempt.at),
        "status_code": attempt.status_code,
        "response": attempt.response_snippet,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
    }


def _message_id(request: Request) -> int:
    return path_id(request, "message_id", "webhook message")


async def list_messages(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    limit = query_int(request, "limit", 50, low=1, high=500)
    before = id_param(request, "before", "must be a message id (next_before of the previous page)")
    async with deps(request).sessionmaker() as session:
        rows = await webhook_messages.page(session, endpoint.id, limit=limit, before=before)
    return JSON({"items": [message_json(m) for m in rows], "next_before": rows[-1].id if len(rows) == limit else None})


async def list_attempts(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    message_id = _message_id(request)
    async with deps(request).sessionmaker() as session:
        message = await webhook_messages.get(session, message_id)
        if message is None or message.endpoint_id != endpoint.id:
            raise NotFound("unknown webhook message")
        rows = await webhook_messages.attempts(session, message_id)
    return JSON({"message": message_json(message), "items": [attempt_json(a) for a in rows]})


async def retry_message(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    message = await redelivery.retry_now(deps(request), _message_id(request), owner(principal))
    return JSON(message_json(message), status_code=202)


routes = [
    Route("/v1/webhook-endpoints/{endpoint_id}/messages", list_messages, methods=["GET"]),
    Route("/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts", list_attempts, methods=["GET"]),
    Route("/v1/webhook-messages/{message_id}/retry", retry_message, methods=["POST"]),
]
