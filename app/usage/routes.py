"""GET /v1/usage: what Hume billed, grouped by day, tenant, backend or a metadata key, and priced."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import authorize
from app.api.responses import JSON, deps
from app.api.typed_input import query_struct
from app.usage import service as usage_service
from app.usage.schemas import UsageQuery


async def usage(request: Request) -> Response:
    principal = await authorize(request, "read")
    query = query_struct(request, UsageQuery)
    return JSON(await usage_service.report(deps(request), query, tenant=principal.read_tenant))


routes = [Route("/v1/usage", usage, methods=["GET"])]
