"""POST /v1/webhooks/hume/evi: Hume's EVI webhooks, verified over the raw bytes, stored and queued."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.bodies import read_body
from app.api.responses import deps
from app.api.webhook_ack import acknowledge
from app.evi import service as evi_service
from app.inbox.acceptance import Accepted


async def hume_evi(request: Request) -> Response:
    d = deps(request)

    async def accept() -> Accepted:
        now = time.time()
        evi_service.check_headers(d, request.headers, now)
        # EVI events are a few kB: the small cap bounds what a holder of a fresh timestamp can make us hold.
        body = await read_body(request, d.settings.max_evi_body_bytes)
        return await evi_service.accept_webhook(d, body=body, headers=request.headers, now=now)

    return await acknowledge("evi", accept)


routes = [Route("/v1/webhooks/hume/evi", hume_evi, methods=["POST"])]
