"""/v1/webhook-endpoints: register, list, show, update, delete, rotate the secret, send a test ping.

Endpoints belong to the API key that registered them; no other key of any tenant sees or changes them (a
404, as for an endpoint that does not exist), except the deployment's admin keys, which are global (an admin
key belongs to no tenant: `create-key` refuses `--tenant` for it). The signing secret is returned by create
and rotate only.

The delivery log: an endpoint's messages, one message's attempts, and sending a message again now.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import authorize
from app.api.bodies import parse_json_object, read_body
from app.api.params import path_id
from app.api.responses import JSON, deps
from app.api.typed_input import body_struct, query_struct
from app.core.times import iso
from app.errors import NotFound
from app.notifications import redelivery, signing
from app.notifications import service as notification_service
from app.notifications.schemas import (
    AttemptOut,
    AttemptPage,
    EndpointIn,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    MessageOut,
    MessagePage,
    MessageQuery,
    PingQueued,
)
from app.store import webhook_endpoints, webhook_messages
from app.store.api_keys import Principal
from app.store.tables import WebhookAttempt, WebhookEndpoint, WebhookMessage
from app.worker.outbox import PING, envelope, queue_message

SCOPE = "webhooks"
# The old secret keeps signing alongside the new one this long, so receivers can switch without a gap.
ROTATION_OVERLAP = timedelta(hours=24)


def endpoint_out(endpoint: WebhookEndpoint, *, secret: bool = False) -> EndpointOut:
    return EndpointOut(
        id=str(endpoint.id),
        url=endpoint.url,
        events=endpoint.events,
        description=endpoint.description,
        disabled=endpoint.disabled_at is not None,
        disabled_at=iso(endpoint.disabled_at),
        disabled_reason=endpoint.disabled_reason,
        failing_since=iso(endpoint.failing_since),
        previous_secret_expires_at=iso(endpoint.previous_secret_expires_at),
        created_at=iso(endpoint.created_at),
        job_id=str(endpoint.job_id) if endpoint.job_id else None,
        secret=endpoint.secret if secret else UNSET,
    )


def owner(principal: Principal) -> uuid.UUID | None:
    """The key whose endpoints this caller may see; None (every endpoint) for the global admin keys. The
    grant decides, not the scope's name: a key stored with a tenant and `admin` holds no admin grant."""
    return None if "admin" in principal.grants else principal.key_id


async def owned_endpoint(request: Request, principal: Principal) -> WebhookEndpoint:
    try:
        endpoint_id = uuid.UUID(request.path_params["endpoint_id"])
    except ValueError:
        raise NotFound("unknown webhook endpoint") from None
    async with deps(request).sessionmaker() as session:
        endpoint = await webhook_endpoints.get(session, endpoint_id, owner=owner(principal))
    if endpoint is None:
        raise NotFound("unknown webhook endpoint")
    return endpoint


async def _json_body(request: Request) -> dict[str, Any]:
    return parse_json_object(await read_body(request, deps(request).settings.max_body_bytes))


async def create_endpoint(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    d = deps(request)
    given = await notification_service.new_endpoint(body_struct(await _json_body(request), EndpointIn), d.url_guard)
    assert given.url is not None and given.events is not None
    async with d.sessionmaker.begin() as session:
        endpoint = await webhook_endpoints.create(
            session, api_key_id=principal.key_id, url=given.url, events=given.events,
            description=given.description, secret=signing.new_secret(),
        )  # fmt: skip
    return JSON(
        endpoint_out(endpoint, secret=True),
        status_code=201,
        headers={"Location": f"/v1/webhook-endpoints/{endpoint.id}"},
    )


async def list_endpoints(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    async with deps(request).sessionmaker() as session:
        rows = await webhook_endpoints.owned_by(session, owner(principal))
    return JSON(EndpointPage(items=[endpoint_out(e) for e in rows]))


async def get_endpoint(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    return JSON(endpoint_out(await owned_endpoint(request, principal)))


async def update_endpoint(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    d = deps(request)
    given = await notification_service.endpoint_update(
        body_struct(await _json_body(request), EndpointPatch), d.url_guard
    )
    fields: dict[str, Any] = {}
    if given.url is not None:
        fields["url"] = given.url
    if given.events is not None:
        fields["events"] = given.events
    if given.description is not None:
        fields["description"] = given.description
    if given.disabled is True and endpoint.disabled_at is None:
        fields.update(disabled_at=datetime.now(UTC), disabled_reason="disabled by its owner")
    elif given.disabled is False:
        fields.update(disabled_at=None, disabled_reason=None, failing_since=None)
    async with d.sessionmaker.begin() as session:
        if fields:
            await webhook_endpoints.change(session, endpoint.id, **fields)
        updated = await webhook_endpoints.get(session, endpoint.id)
    assert updated is not None
    return JSON(endpoint_out(updated))


async def delete_endpoint(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    async with deps(request).sessionmaker.begin() as session:
        await webhook_endpoints.remove(session, endpoint.id)
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    async with deps(request).sessionmaker.begin() as session:
        await webhook_endpoints.rotate(
            session, endpoint.id, secret=signing.new_secret(), overlap_until=datetime.now(UTC) + ROTATION_OVERLAP
        )
        rotated = await webhook_endpoints.get(session, endpoint.id)
    assert rotated is not None
    return JSON(endpoint_out(rotated, secret=True))


async def send_test(request: Request) -> Response:
    """Queue a `ping` to the endpoint (delivered, retried and logged like any message)."""
    principal = await authorize(request, SCOPE)
    endpoint = await owned_endpoint(request, principal)
    d = deps(request)
    body = envelope(PING, {"endpoint_id": str(endpoint.id)})
    async with d.sessionmaker.begin() as session:
        message_id = await queue_message(session, d, endpoint.id, PING, body, None)
    return JSON(PingQueued(message_id=message_id, type=PING), status_code=202)


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
    Route("/v1/webhook-endpoints", create_endpoint, methods=["POST"]),
    Route("/v1/webhook-endpoints", list_endpoints, methods=["GET"]),
    Route("/v1/webhook-endpoints/{endpoint_id}", get_endpoint, methods=["GET"]),
    Route("/v1/webhook-endpoints/{endpoint_id}", update_endpoint, methods=["PATCH"]),
    Route("/v1/webhook-endpoints/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
    Route("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/v1/webhook-endpoints/{endpoint_id}/test", send_test, methods=["POST"]),
    Route("/v1/webhook-endpoints/{endpoint_id}/messages", list_messages, methods=["GET"]),
    Route("/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts", list_attempts, methods=["GET"]),
    Route("/v1/webhook-messages/{message_id}/retry", retry_message, methods=["POST"]),
]
