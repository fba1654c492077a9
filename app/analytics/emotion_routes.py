"""Across jobs: where an emotion is strongest (GET /v1/emotions/top)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.json_limits import encodable, parse_metadata_filter
from app.api.request_helpers import JSON, authorize, deps, query_datetime, query_int, query_text
from app.errors import InvalidInput
from app.hume.emotions import MODELS
from app.store import queries

ORDERS = ("mean", "max")


def _metadata(request: Request) -> dict[str, Any] | None:
    raw = query_text(request, "metadata")
    if raw is None:
        return None
    return parse_metadata_filter(raw)


async def top_emotion(request: Request) -> Response:
    """The sources where an emotion is strongest (by mean or peak), newest data included as soon as it is
    ingested; filters: job creation time range and job metadata containment."""
    principal = await authorize(request, "read")
    params = request.query_params
    model = params.get("model")
    if model not in MODELS:
        raise InvalidInput("model", f"required; one of {', '.join(MODELS)}")
    emotion = query_text(request, "emotion")
    if not emotion:
        raise InvalidInput("emotion", "required, e.g. emotion=Anger")
    by = params.get("by", "mean")
    if by not in ORDERS:
        raise InvalidInput("by", f"must be one of {', '.join(ORDERS)}")
    limit = query_int(request, "limit", 20, low=1, high=500)
    after, before = query_datetime(request, "created_after"), query_datetime(request, "created_before")
    metadata = _metadata(request)
    async with deps(request).sessionmaker() as session:
        name = await queries.emotion_name(session, model, emotion)
        if name is None:
            raise InvalidInput("emotion", f"unknown emotion for the {model} model")
        items = await queries.top_emotion(
            session, model=model, emotion=name, limit=limit, by=by,
            created_after=after, created_before=before, metadata=metadata,
            tenant=principal.read_tenant,
        )  # fmt: skip
    for item in items:
        item["job_metadata"] = encodable(item.get("job_metadata"))
    return JSON({"model": model, "emotion": name, "by": by, "items": items})


routes = [Route("/v1/emotions/top", top_emotion, methods=["GET"])]
