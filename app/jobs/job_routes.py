"""Jobs: submit, list, show (every kind and backend)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.json_limits import encodable, parse_metadata_filter
from app.api.request_helpers import (
    JSON,
    authorize,
    deps,
    existing_job,
    parse_json_object,
    query_datetime,
    query_int,
    query_text,
    read_body,
)
from app.errors import InvalidInput
from app.jobs import job_submission
from app.jobs.job_schemas import submit_request
from app.store import jobs
from app.store.tables import JOB_KINDS, JOB_STATUSES, Job


def job_json(job: Job) -> dict[str, Any]:
    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(job.id),
        "kind": job.kind,
        "tenant": job.tenant,
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
        "request": encodable(job.request),
        "metadata": encodable(job.job_metadata),
        "details": encodable(job.details),
    }


async def create_job(request: Request) -> Response:
    principal = await authorize(request, "submit")
    d = deps(request)
    body = await read_body(request, d.settings.max_body_bytes)
    submit = submit_request(parse_json_object(body))
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key", "must be 1 to 255 characters")
    job, created = await job_submission.submit(d, principal, submit, key)
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
    principal = await authorize(request, "read")
    limit = query_int(request, "limit", 50, low=1, high=500)
    metadata_raw = query_text(request, "metadata")
    metadata = None if metadata_raw is None else parse_metadata_filter(metadata_raw)
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
            tenant=principal.read_tenant,
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
    return JSON(job_json(await existing_job(request)))


routes = [
    Route("/v1/jobs", create_job, methods=["POST"]),
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
]
