"""Jobs: submit, list, show (every kind and backend)."""

from __future__ import annotations

import uuid
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import authorize, existing_job
from app.api.bodies import parse_json_object, read_body
from app.api.json_limits import encodable
from app.api.receiver_url import checked_receiver_url
from app.api.responses import JSON, deps
from app.api.typed_input import datetime_param, json_object_param, query_struct
from app.errors import InvalidInput
from app.jobs import service as job_service
from app.jobs.schemas import MAX_IDEMPOTENCY_KEY, JobError, JobListQuery, JobOut, JobPage, LastEvent, submit_request
from app.store import hume_usage, inbox_events, jobs
from app.store.tables import Job


def job_out(job: Job, last_event: LastEvent | None = None, metered: dict[uuid.UUID, float] | None = None) -> JobOut:
    """`metered`: Hume-metered seconds by job (hume_usage.job_seconds); a v1 job missing from it spent none."""
    return JobOut(
        id=job.id,
        kind=job.kind,  # type: ignore[arg-type]  # the table's CHECK holds the same values
        backend=job.backend,  # type: ignore[arg-type]
        tenant=job.tenant,
        status=job.status,  # type: ignore[arg-type]
        hume_job_id=job.hume_job_id,
        created_at=job.created_at,
        updated_at=job.updated_at,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        num_predictions=job.num_predictions,
        num_errors=job.num_errors,
        predictions_expired_at=job.predictions_expired_at,
        error=JobError(code=job.error_code, message=job.error) if job.error else None,
        # Rows stored before the metadata bounds existed may hold values JSON cannot carry: only that field
        # shows an error marker, the job (and the page holding it) is still served.
        request=encodable(job.request),
        metadata=encodable(job.job_metadata),
        details=encodable(job.details),
        last_event=last_event,
        hume_metered_seconds=round((metered or {}).get(job.id, 0.0), 3) if job.backend == "v1" else None,
    )


async def create_job(request: Request) -> Response:
    principal = await authorize(request, "submit")
    d = deps(request)
    body = await read_body(request, d.settings.max_body_bytes)
    submit = submit_request(parse_json_object(body), d.settings.default_backend)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    if submit.estimate:
        return JSON(await job_service.estimate(d, principal, submit))
    if submit.notify_url is not None:
        await checked_receiver_url(submit.notify_url, d.url_guard, "notify_url")
    job, created, notify_secret = await job_service.submit(d, principal, submit, key)
    out = job_out(job)
    if notify_secret is not None:
        out.notify_secret = notify_secret
    return JSON(out, status_code=202 if created else 200, headers={"Location": f"/v1/jobs/{job.id}"})


def _cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    if raw is None:
        return None
    try:
        return jobs.decode_cursor(raw)
    except ValueError:
        raise InvalidInput("cursor", "not a cursor returned by this API") from None


async def list_jobs(request: Request) -> Response:
    principal = await authorize(request, "read")
    query = query_struct(request, JobListQuery)
    async with deps(request).sessionmaker() as session:
        rows = await jobs.page(
            session,
            limit=query.limit + 1,
            cursor=_cursor(query.cursor),
            status=query.status,
            kind=query.kind,
            hume_id=query.hume_id,
            created_after=datetime_param("created_after", query.created_after),
            created_before=datetime_param("created_before", query.created_before),
            metadata=json_object_param("metadata", query.metadata),
            tenant=principal.read_tenant,
        )
        metered = await hume_usage.job_seconds(session, [j.id for j in rows])
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = jobs.encode_cursor(last)
    return JSON(JobPage(items=[job_out(j, metered=metered) for j in rows], next_cursor=next_cursor))


async def get_job(request: Request) -> Response:
    await authorize(request, "read")
    job = await existing_job(request)
    async with deps(request).sessionmaker() as session:
        trouble = await inbox_events.trouble_for_job(session, job.id)
        metered = await hume_usage.job_seconds(session, [job.id])
    # Why a job is stuck, where users look: the event retrying or dead (the admin API can replay it).
    last_event = None if trouble is None else LastEvent(
        id=trouble.id, state=trouble.state, attempts=trouble.attempts, last_error=trouble.last_error,
        replay=f"/v1/admin/events/{trouble.id}/replay",
    )  # fmt: skip
    return JSON(job_out(job, last_event, metered))


routes = [
    Route("/v1/jobs", create_job, methods=["POST"]),
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
]
