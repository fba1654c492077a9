"""Analytics: one job's predictions as analysts read them (summary, timeline, rows as JSON pages or streamed
CSV), and across jobs where an emotion is strongest (GET /v1/emotions/top)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.analytics import csv_export
from app.analytics.schemas import (
    ModelSummary,
    PredictionPageQuery,
    PredictionQuery,
    Summary,
    Timeline,
    TimelinePoint,
    TimelineQuery,
    TopEmotionQuery,
    TopEmotions,
    TopSource,
)
from app.api.auth import authorize, existing_job
from app.api.json_limits import encodable
from app.api.long_reads import bounded_stream
from app.api.responses import JSON, deps
from app.api.typed_input import datetime_param, json_object_param, query_struct
from app.errors import InvalidInput, PredictionsExpired
from app.store import analytics
from app.store.tables import Job


async def summary(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    async with deps(request).sessionmaker() as session:
        models = await analytics.summary(session, job.id)
    for model in models.values():
        model["top"] = [e["name"] for e in model["emotions"][:3]]
    return JSON(
        Summary(
            job_id=job.id,
            status=job.status,
            models=msgspec.convert(models, dict[str, ModelSummary]),
            predictions_expired=job.predictions_expired_at is not None,
        )
    )


def _readable(job: Job) -> analytics.JobScope:
    """Where the job's predictions are, unless retention dropped them (410, the summary remains)."""
    if job.predictions_expired_at is not None:
        raise PredictionsExpired(
            f"this job's predictions were deleted on {job.predictions_expired_at.date().isoformat()} under its "
            f"tenant's retention; GET /v1/jobs/{job.id}/summary still answers",
            details={"job_id": str(job.id), "predictions_expired_at": job.predictions_expired_at.isoformat()},
        )
    return analytics.JobScope.of(job)


async def timeline(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    scope = _readable(job)
    query = query_struct(request, TimelineQuery)
    async with deps(request).sessionmaker() as session:
        position = await analytics.emotion_position(session, query.model, query.emotion)
        if position is None:
            raise InvalidInput("emotion", f"unknown emotion for the {query.model} model")
        [points] = await analytics.timelines(
            session, job.id, model=query.model, positions=[position], bucket_s=query.bucket_s,
            by_group=query.per_group, scope=scope,
        )  # fmt: skip
    return JSON(
        Timeline(
            job_id=job.id,
            model=query.model,
            emotion=query.emotion,
            bucket_s=query.bucket_s,
            points=msgspec.convert(points, list[TimelinePoint]),
        )
    )


def _filter(query: PredictionQuery, job: Job) -> analytics.PredictionFilter:
    return analytics.PredictionFilter(
        job_id=job.id,
        model=query.model,
        source_id=query.source,
        group=query.group,
        time_from=query.from_s,
        time_to=query.to_s,
        scope=_readable(job),
    )


def _wants_csv(request: Request) -> bool:
    return request.url.path.endswith(".csv") or "text/csv" in request.headers.get("accept", "")


async def predictions(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    if _wants_csv(request):
        filt = _filter(query_struct(request, PredictionQuery), job)
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
        items = await analytics.predictions_page(session, _filter(query, job), after_id=after, limit=query.limit + 1)
    more = len(items) > query.limit
    items = items[: query.limit]
    # Rows stay dicts (PredictionPage documents them): each model's extras sit beside the declared fields.
    return JSON({"items": items, "next_cursor": str(items[-1]["id"]) if more and items else None})


async def top_emotion(request: Request) -> Response:
    """The sources where an emotion is strongest (by mean or peak), newest data included as soon as it is
    ingested; filters: job creation time range and job metadata containment."""
    principal = await authorize(request, "read")
    query = query_struct(request, TopEmotionQuery)
    after = datetime_param("created_after", query.created_after)
    before = datetime_param("created_before", query.created_before)
    metadata = json_object_param("metadata", query.metadata)
    async with deps(request).sessionmaker() as session:
        name = await analytics.emotion_name(session, query.model, query.emotion)
        if name is None:
            raise InvalidInput("emotion", f"unknown emotion for the {query.model} model")
        items = await analytics.top_emotion(
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


routes = [
    Route("/v1/jobs/{job_id}/summary", summary, methods=["GET"]),
    Route("/v1/jobs/{job_id}/timeline", timeline, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions", predictions, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions.csv", predictions, methods=["GET"]),
    Route("/v1/emotions/top", top_emotion, methods=["GET"]),
]
