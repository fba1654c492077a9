"""Jobs: submit, list, show, and the analyst views of one job's predictions."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app import exports
from app import jobs as job_service
from app.errors import InvalidInput, NotFound
from app.http import JSON, authorize, deps, query_datetime, query_float, query_int, query_text, read_body
from app.hume.emotions import MODELS
from app.store import jobs, queries
from app.store.tables import JOB_KINDS, JOB_STATUSES, Job
from app.validation import parse_json_object, submit_request


def job_json(job: Job) -> dict[str, Any]:
    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "hume_job_id": job.hume_job_id,
        "created_at": ts(job.created_at),
        "updated_at": ts(job.updated_at),
        "submitted_at": ts(job.submitted_at),
        "started_at": ts(job.started_at),
        "completed_at": ts(job.completed_at),
        "num_predictions": job.num_predictions,
        "num_errors": job.num_errors,
        "error": {"code": job.error_code, "message": job.error} if job.error else None,
        "request": job.request,
        "metadata": job.job_metadata,
        "details": job.details,
    }


def _job_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["job_id"])
    except ValueError:
        raise NotFound("unknown job") from None


async def _existing_job(request: Request) -> Job:
    async with deps(request).sessionmaker() as session:
        job = await jobs.get(session, _job_id(request))
    if job is None:
        raise NotFound("unknown job")
    return job


async def create_job(request: Request) -> Response:
    principal = await authorize(request, "submit")
    d = deps(request)
    body = await read_body(request, d.settings.max_body_bytes)
    submit = submit_request(parse_json_object(body))
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key", "must be 1 to 255 characters")
    job, created = await job_service.submit(d, principal, submit, key)
    return JSON(job_json(job), status_code=202 if created else 200, headers={"Location": f"/v1/jobs/{job.id}"})


def _cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    if raw is None:
        return None
    try:
        created, _, job_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except ValueError:
        raise InvalidInput("cursor", "not a cursor returned by this API") from None


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise InvalidInput(name, f"must be one of {', '.join(allowed)}")
    return value


async def list_jobs(request: Request) -> Response:
    await authorize(request, "read")
    limit = query_int(request, "limit", 50, low=1, high=500)
    metadata_raw = query_text(request, "metadata")
    metadata = None
    if metadata_raw is not None:
        try:
            metadata = orjson.loads(metadata_raw)
        except orjson.JSONDecodeError:
            raise InvalidInput("metadata", "must be a JSON object") from None
        if not isinstance(metadata, dict):
            raise InvalidInput("metadata", "must be a JSON object")
        if b"\\u0000" in orjson.dumps(metadata):  # jsonb cannot hold NUL
            raise InvalidInput("metadata", "must not contain NUL characters")
    async with deps(request).sessionmaker() as session:
        rows = await jobs.page(
            session,
            limit=limit + 1,
            cursor=_cursor(request.query_params.get("cursor")),
            status=_choice(request, "status", JOB_STATUSES),
            kind=_choice(request, "kind", JOB_KINDS),
            hume_id=query_text(request, "hume_id"),
            created_after=query_datetime(request, "created_after"),
            created_before=query_datetime(request, "created_before"),
            metadata=metadata,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.id}".encode()).decode()
    return JSON({"items": [job_json(j) for j in rows], "next_cursor": next_cursor})


async def get_job(request: Request) -> Response:
    await authorize(request, "read")
    return JSON(job_json(await _existing_job(request)))


async def summary(request: Request) -> Response:
    await authorize(request, "read")
    job = await _existing_job(request)
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
    job = await _existing_job(request)
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
    job = await _existing_job(request)
    filt = _filter(request, job.id)
    if _wants_csv(request):
        return StreamingResponse(
            exports.csv_chunks(deps(request).sessionmaker, filt),
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
    Route("/v1/jobs", create_job, methods=["POST"]),
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/v1/jobs/{job_id}/summary", summary, methods=["GET"]),
    Route("/v1/jobs/{job_id}/timeline", timeline, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions", predictions, methods=["GET"]),
    Route("/v1/jobs/{job_id}/predictions.csv", predictions, methods=["GET"]),
]
