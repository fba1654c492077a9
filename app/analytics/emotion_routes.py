"""Across jobs: where an emotion is strongest (GET /v1/emotions/top)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.analytics.analytics_schemas import TopEmotionQuery, TopEmotions, TopSource
from app.api.json_limits import encodable
from app.api.request_helpers import JSON, authorize, deps
from app.api.typed_input import datetime_param, json_object_param, query_struct
from app.errors import InvalidInput
from app.store import queries


async def top_emotion(request: Request) -> Response:
    """The sources where an emotion is strongest (by mean or peak), newest data included as soon as it is
    ingested; filters: job creation time range and job metadata containment."""
    principal = await authorize(request, "read")
    query = query_struct(request, TopEmotionQuery)
    after = datetime_param("created_after", query.created_after)
    before = datetime_param("created_before", query.created_before)
    metadata = json_object_param("metadata", query.metadata)
    async with deps(request).sessionmaker() as session:
        name = await queries.emotion_name(session, query.model, query.emotion)
        if name is None:
            raise InvalidInput("emotion", f"unknown emotion for the {query.model} model")
        items = await queries.top_emotion(
            session, model=query.model, emotion=name, limit=query.limit, by=query.by,
            created_after=after, created_before=before, metadata=metadata,
            tenant=principal.read_tenant,
        )  # fmt: skip
    for item in items:
        # One job stored before the metadata bounds must not take the whole ranking down.
        item["job_metadata"] = encodable(item.get("job_metadata"))
    return JSON(
        TopEmotions(model=query.model, emotion=name, by=query.by, items=msgspec.convert(items, list[TopSource]))
    )


routes = [Route("/v1/emotions/top", top_emotion, methods=["GET"])]
