"""The jobs list (filters, cursor paging), its live-status JSON, and starting a demo job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from msgspec import Meta
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.responses import JSON, deps
from app.api.typed_input import QueryStruct, json_object_param, query_struct
from app.core.job_status import FINAL
from app.dashboard.rendering import HEADERS, PREFIX, Ui, Viewer
from app.errors import Forbidden, InvalidInput
from app.jobs import service as job_service
from app.jobs.schemas import submit_request
from app.store import jobs
from app.store.tables import JOB_KINDS, JOB_STATUSES, Job

PAGE_SIZE = 50
DEMO_REQUEST: dict[str, Any] = {
    "urls": ["https://example.com/demo-interview.mp4#duration=90"],
    "models": {"face": {}, "prosody": {}},
    "metadata": {"origin": "dashboard-demo"},
}


class RefreshQuery(QueryStruct):
    interval: Annotated[int, Meta(ge=1, le=60)] = 2


def param(request: Request, name: str) -> str | None:
    """A query parameter, None when absent or blank (an untouched form field sends an empty string)."""
    value = request.query_params.get(name, "").strip()
    if "\x00" in value:
        raise InvalidInput(name, "must not contain NUL characters")
    return value or None


def choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = param(request, name)
    if value is not None and value not in allowed:
        raise InvalidInput(name, f"must be one of {', '.join(allowed)}")
    return value


def when(request: Request, name: str) -> datetime | None:
    value = param(request, name)
    try:
        return None if value is None else datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, "must be a date and time like 2025-01-31T09:30") from None


def metadata_filter(request: Request) -> dict[str, Any] | None:
    """The API's metadata filter, with the API's bounds (depth, size, numbers that round-trip)."""
    return json_object_param("metadata", param(request, "metadata"))


def _cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Same (created_at|id) cursor as GET /v1/jobs, so links can be traded between the two."""
    if raw is None:
        return None
    try:
        return jobs.decode_cursor(raw)
    except ValueError:
        raise InvalidInput("cursor", "not a cursor of this list; go back to the first page") from None


def duration_s(job: Job) -> float | None:
    start = job.started_at or job.submitted_at or job.created_at
    return (job.completed_at - start).total_seconds() if job.completed_at and start else None


def job_row(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id), "kind": job.kind, "status": job.status, "final": job.status in FINAL,
        "created_at": job.created_at, "duration_s": duration_s(job), "num_predictions": job.num_predictions,
        "num_errors": job.num_errors, "metadata": job.job_metadata, "hume_job_id": job.hume_job_id,
    }  # fmt: skip


def demo_available(request: Request, viewer: Viewer) -> bool:
    settings = deps(request).settings
    # The demo job is batch, which only an emulator (built in, or a local one) still serves.
    loopback = settings.hume_url.startswith(("http://127.0.0.1", "http://localhost"))
    return viewer.can("submit") and loopback


async def jobs_list(ui: Ui, request: Request, viewer: Viewer) -> Response:
    filters = {
        "status": choice(request, "status", JOB_STATUSES), "kind": choice(request, "kind", JOB_KINDS),
        "metadata": param(request, "metadata"), "created_after": param(request, "created_after"),
        "created_before": param(request, "created_before"),
    }  # fmt: skip
    async with deps(request).sessionmaker() as db:
        rows = await jobs.page(
            db, limit=PAGE_SIZE + 1, cursor=_cursor(param(request, "cursor")), status=filters["status"],
            kind=filters["kind"], created_after=when(request, "created_after"),
            created_before=when(request, "created_before"), metadata=metadata_filter(request),
            tenant=viewer.read_tenant,
        )  # fmt: skip
    next_url = None
    if len(rows) > PAGE_SIZE:
        last = rows[PAGE_SIZE - 1]
        cursor = jobs.encode_cursor(last)
        kept = {k: v for k, v in filters.items() if v}
        next_url = f"{PREFIX}/jobs?" + urlencode({**kept, "cursor": cursor})
    return ui.render(
        request, "jobs.html", viewer=viewer, jobs=[job_row(j) for j in rows[:PAGE_SIZE]], filters=filters,
        statuses=JOB_STATUSES, kinds=JOB_KINDS, next_url=next_url, first_page=param(request, "cursor") is None,
        demo=demo_available(request, viewer),
    )  # fmt: skip


async def jobs_status(ui: Ui, request: Request, viewer: Viewer) -> Response:
    """Status and counts of the listed jobs, for the pages' polling while jobs run."""
    ids: list[uuid.UUID] = []
    for raw in request.query_params.getlist("id")[:100]:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            raise InvalidInput("id", "must be job ids") from None
    found: dict[str, Any] = {}
    async with deps(request).sessionmaker() as db:
        for job_id in ids:
            job = await jobs.get(db, job_id)
            if job is not None and viewer.read_tenant in (None, job.tenant):
                row = job_row(job)
                found[row["id"]] = {k: row[k] for k in ("status", "final", "num_predictions", "num_errors")}
                found[row["id"]]["duration_s"] = row["duration_s"]
    interval = query_struct(request, RefreshQuery).interval
    return JSON({"jobs": found, "poll_after_s": interval}, headers={"Cache-Control": "no-store"})


async def start_demo(ui: Ui, request: Request, viewer: Viewer) -> Response:
    await ui.form(request, viewer)
    if not demo_available(request, viewer):
        raise Forbidden("Demo jobs need a key with the submit scope and the service running on the emulator.")
    job, *_ = await job_service.submit(deps(request), viewer.principal, submit_request(DEMO_REQUEST), None)
    return RedirectResponse(f"{PREFIX}/jobs/{job.id}", status_code=303, headers=HEADERS)
