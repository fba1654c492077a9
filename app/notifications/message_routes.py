"""The delivery log: an endpoint's messages, one message's attempts, and sending a message again now."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.request_helpers import JSON, authorize, deps, path_id
from app.api.typed_input import query_struct
from app.core.times import iso
from app.errors import NotFound
from app.notifications import redelivery
from app.notifications.endpoint_routes import SCOPE, owned_endpoint, owner
from app.notifications.webhook_schemas import AttemptOut, AttemptPage, MessageOut, MessagePage, MessageQuery
from app.store import webhook_messages
from app.store.tables import WebhookAttempt, WebhookMessage


def message_out(message: WebhookMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        msg_id=message.msg_id,
        endpoint_id=str(message.endpoint_id),
        job_id=str(message.job_id) if message.job_id else None,
        type=message.event_type,
        state=message.state,
        attempts=message.attempts,
        next_attempt_at=iso(message.next_attempt_at) if message.state == "pending" else None,
        created_at=iso(message.created_at),
        payload=message.payload,
    )


def attempt_out(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut(
        at=iso(attempt.at),
        status_code=attempt.status_code,
        response=attempt.response_snippet,
        duration_ms=attempt.duration_ms,
        error=attempt.error,
    )


def _message_id(request: Request) -> int:
    return path_id(request, "message_id", "webhook message")


async def list_messages(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    query = query_struct(request, MessageQuery)
    async with deps(request).sessionmaker() as session:
        rows = await webhook_messages.page(session, endpoint.id, limit=query.limit, before=query.before)
    next_before = rows[-1].id if len(rows) == query.limit else None
    return JSON(MessagePage(items=[message_out(m) for m in rows], next_before=next_before))


async def list_attempts(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    message_id = _message_id(request)
    async with deps(request).sessionmaker() as session:
        message = await webhook_messages.get(session, message_id)
        if message is None or message.endpoint_id != endpoint.id:
            raise NotFound("unknown webhook message")
        rows = await webhook_messages.attempts(session, message_id)
    return JSON(AttemptPage(message=message_out(message), items=[attempt_out(a) for a in rows]))


async def retry_message(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    message = await redelivery.retry_now(deps(request), _message_id(request), owner(principal))
    return JSON(message_out(message), status_code=202)


routes = [
    Route("/v1/webhook-endpoints/{endpoint_id}/messages", list_messages, methods=["GET"]),
    Route("/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts", list_attempts, methods=["GET"]),
    Route("/v1/webhook-messages/{message_id}/retry", retry_message, methods=["POST"]),
]
