"""POST /v1/webhooks/hume/batch: Hume's batch callback, verified by the per-job secret in its URL."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.bodies import read_body
from app.api.responses import deps
from app.api.webhook_ack import acknowledge
from app.batch import outcomes as batch_outcomes
from app.errors import PayloadTooLarge
from app.inbox.acceptance import Accepted

# Headers worth keeping with an event for audit; never Authorization or cookies.
_KEPT_HEADERS = ("content-type", "user-agent", "x-hume-ai-webhook-timestamp", "x-hume-ai-webhook-signature")


async def hume_batch(request: Request) -> Response:
    d = deps(request)
    job_id = request.query_params.get("job_id")

    unread = True

    async def accept() -> Accepted:
        nonlocal unread
        # A final job's callbacks are still read and stored for audit: only a holder of its token gets here.
        job = await batch_outcomes.check_callback(d, job_id=job_id, token=request.query_params.get("token"))
        headers = {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}
        try:
            body = await read_body(request, d.settings.max_webhook_body_bytes)
        except PayloadTooLarge:
            return await batch_outcomes.accept_oversized(d, job, headers=headers)
        unread = False
        return await batch_outcomes.accept_callback(d, job, body=body, headers=headers)

    response = await acknowledge("batch", accept, job_id=job_id)
    if unread:
        # The rest of the body was never read: the connection cannot carry another request.
        response.headers["Connection"] = "close"
    return response


routes = [Route("/v1/webhooks/hume/batch", hume_batch, methods=["POST"])]
