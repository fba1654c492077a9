"""`python -m app webhooks listen --port N`: a local receiver that registers itself as an endpoint with a
running service, verifies each delivery with the `standardwebhooks` library and prints it (like
`stripe listen`). The endpoint is deleted again on exit.

The service must be allowed to call this machine: under `make run` (built-in emulator) loopback is
allowed by default; elsewhere set ALLOW_PRIVATE_HOSTS=127.0.0.1 on the service.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _receiver(secret: str) -> Starlette:
    verifier = Webhook(secret)

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        try:
            payload = verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            print(f"REJECTED {headers.get('webhook-id', '?')}: {exc}", flush=True)
            return Response("bad signature", status_code=400)
        print(f"--> {payload.get('type')} {headers['webhook-id']} (signature verified)", flush=True)
        print(json.dumps(payload, indent=2), flush=True)
        return Response(status_code=204)

    return Starlette(routes=[Route("/", receive, methods=["POST"])])


async def listen(service_url: str, key: str, port: int, events: list[str] | None) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=service_url.rstrip("/"), headers=headers, timeout=30) as client:
        body: dict[str, Any] = {"url": f"http://127.0.0.1:{port}/", "description": "python -m app webhooks listen"}
        if events:
            body["events"] = events
        created = await client.post("/v1/webhook-endpoints", json=body)
        if created.status_code != 201:
            print(f"error: the service refused the endpoint ({created.status_code}): {created.text}", file=sys.stderr)
            return 1
        endpoint = created.json()
        print(f"Listening on http://127.0.0.1:{port}/ as endpoint {endpoint['id']}; Ctrl-C to stop", flush=True)
        server = uvicorn.Server(uvicorn.Config(_receiver(endpoint["secret"]), host="127.0.0.1", port=port,
                                               log_level="warning"))  # fmt: skip
        try:
            await server.serve()
        finally:
            await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}")
    return 0


def run(service_url: str, key: str | None, port: int, events: list[str] | None) -> int:
    if not key:
        print("error: an API key with the webhooks or admin scope is needed (--key or HES_API_KEY)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(listen(service_url, key, port, events))
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the service at {service_url}: {exc}", file=sys.stderr)
        return 1
