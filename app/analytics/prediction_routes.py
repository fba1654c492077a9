"""One job's predictions as analysts read them: summary, timeline, rows as JSON pages or streamed CSV."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.analytics import csv_export
from app.api.long_reads import bounded_stream
from app.api.request_helpers import JSON, authorize, deps, existing_job, query_float, query_int, query_text
from app.errors import InvalidInput
from app.hume.emotions import MODELS
from app.store import queries


async def summary(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    async with deps(request).sessionmaker() as session:
        models = await queries.summary(session, job.id)
    for model in models.values():
        model["top"] = [e["name"] for e in model["emotions"][:3]]
    return JSON({"job_id": str(job.id), "status": job.status, "models": models})


def _model(request: Request, required: bool = False) -> str | None:
    model = request.query_params.get("model")
    if model is None:
        if required:
            raise InvalidInput("model", f"required; one of {', '.join(MODELS)}")
        return None
    if model not in MODELS:
        raise InvalidInput("model", f"must be one of {', '.join(MODELS)}")
    return model


async def timeline(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    model = _model(request, required=True)
    assert model is not None
    emotion = query_text(request, "emotion")
    if not emotion:
        raise InvalidInput("emotion", "required, e.g. emotion=Joy")
    bucket = query_float(request, "bucket", 1.0, low=0.001, high=86_400.0)
    assert bucket is not None
    by_group = request.query_params.get("per_group", "false").lower() in {"1", "true", "yes"}
    async with deps(request).sessionmaker() as session:
        position = await queries.emotion_position(session, model, emotion)
        if position is None:
            raise InvalidInput("emotion", f"unknown emotion for the {model} model")
        points = await queries.timeline(
            session, job.id, model=model, position=position, bucket_s=bucket, by_group=by_group
        )
    return JSON({"job_id": str(job.id), "model": model, "emotion": emotion, "bucket": bucket, "points": points})


def _filter(request: Request, job_id: uuid.UUID) -> queries.PredictionFilter:
    source = request.query_params.get("source")
    source_id = None
    if source is not None:
        try:
            source_id = int(source)
        except ValueError:
            raise InvalidInput("source", "must be a source id (an integer)") from None
    return queries.PredictionFilter(
        job_id=job_id,
        model=_model(request),
        source_id=source_id,
        group=query_text(request, "group"),
        time_from=query_float(request, "from", None, low=0, high=1e9),
        time_to=query_float(request, "to", None, low=0, high=1e9),
    )


def _wants_csv(request: Request) -> bool:
    return request.url.path.endswith(".csv") or "text/csv" in request.headers.get("accept", "")


async def predictions(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    filt = _filter(request, job.id)
    if _wants_csv(request):
        d = deps(request)
        chunks = csv_export.csv_chunks(d.sessionmaker, filt, statement_timeout_s=d.settings.export_statement_timeout_s)
        return await bounded_stream(
            d,
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="job-{job.id}.csv"'},
        )
    limit = query_int(request, "limit", 500, low=1, high=5000)
    cursor = request.query_params.get("cursor")
    after = None
    if cursor is not None:
        try:
            after = int(cursor)
        except ValueError:
            raise InvalidInput("cursor", "not a cursor returned by this API") from None
    async with deps(request).sessionmaker() as session:
        items = await queries.predictions_page(session, filt, after_id=after, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return JSON({"items": items, "next_cursor": str(items[-1]["id"]) if more and items else None})


routes = [
    Route("/v1/jobs/{job_id}/summary", summary, methods=["GET"]),
    Route("/v1/jobs/{job_id}/timeline", timeline, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions", predictions, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions.csv", predictions, methods=["GET"]),
]
