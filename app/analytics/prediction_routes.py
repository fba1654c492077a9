"""One job's predictions as analysts read them: summary, timeline, rows as JSON pages or streamed CSV."""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.analytics import csv_export
from app.analytics.analytics_schemas import (
    ModelSummary,
    PredictionPageQuery,
    PredictionQuery,
    Summary,
    Timeline,
    TimelinePoint,
    TimelineQuery,
)
from app.api.long_reads import bounded_stream
from app.api.request_helpers import JSON, authorize, deps, existing_job
from app.api.typed_input import query_struct
from app.errors import InvalidInput
from app.store import queries


async def summary(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    async with deps(request).sessionmaker() as session:
        models = await queries.summary(session, job.id)
    for model in models.values():
        model["top"] = [e["name"] for e in model["emotions"][:3]]
    return JSON(Summary(job_id=job.id, status=job.status, models=msgspec.convert(models, dict[str, ModelSummary])))


async def timeline(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    query = query_struct(request, TimelineQuery)
    async with deps(request).sessionmaker() as session:
        position = await queries.emotion_position(session, query.model, query.emotion)
        if position is None:
            raise InvalidInput("emotion", f"unknown emotion for the {query.model} model")
        points = await queries.timeline(
            session, job.id, model=query.model, position=position, bucket_s=query.bucket_s, by_group=query.per_group
        )
    return JSON(
        Timeline(
            job_id=job.id,
            model=query.model,
            emotion=query.emotion,
            bucket_s=query.bucket_s,
            points=msgspec.convert(points, list[TimelinePoint]),
        )
    )


def _filter(query: PredictionQuery, job_id: uuid.UUID) -> queries.PredictionFilter:
    return queries.PredictionFilter(
        job_id=job_id,
        model=query.model,
        source_id=query.source,
        group=query.group,
        time_from=query.from_s,
        time_to=query.to_s,
    )


def _wants_csv(request: Request) -> bool:
    return request.url.path.endswith(".csv") or "text/csv" in request.headers.get("accept", "")


async def predictions(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    if _wants_csv(request):
        filt = _filter(query_struct(request, PredictionQuery), job.id)
        d = deps(request)
        chunks = csv_export.csv_chunks(d.sessionmaker, filt, statement_timeout_s=d.settings.export_statement_timeout_s)
        return await bounded_stream(
            d,
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="job-{job.id}.csv"'},
        )
    query = query_struct(request, PredictionPageQuery)
    after = None
    if query.cursor is not None:
        try:
            after = int(query.cursor)
        except ValueError:
            raise InvalidInput("cursor", "not a cursor returned by this API") from None
        if not 0 <= after < 2**63:
            raise InvalidInput("cursor", "not a cursor returned by this API")
    async with deps(request).sessionmaker() as session:
        items = await queries.predictions_page(session, _filter(query, job.id), after_id=after, limit=query.limit + 1)
    more = len(items) > query.limit
    items = items[: query.limit]
    # Rows stay dicts (PredictionPage documents them): each model's extras sit beside the declared fields.
    return JSON({"items": items, "next_cursor": str(items[-1]["id"]) if more and items else None})


routes = [
    Route("/v1/jobs/{job_id}/summary", summary, methods=["GET"]),
    Route("/v1/jobs/{job_id}/timeline", timeline, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions", predictions, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions.csv", predictions, methods=["GET"]),
]
