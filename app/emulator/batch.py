"""Routes of the batch Expression Measurement API (``/v0/batch/jobs...``)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batch_request import BatchRequestError, normalize_request
from .jobs import Job, build_artifacts, now_ms
from .lifecycle import run_job
from .media import MediaSource, file_source, text_source, url_source
from .responses import emu, error, json, parse_multipart

STATUSES = ("QUEUED", "IN_PROGRESS", "COMPLETED", "FAILED")
# Hume documents 100 MB per local file (an older page says 1 GB; the stricter one is used).
MAX_LOCAL_FILE_BYTES = 100 * 1024 * 1024


async def _parse_start(request: Request) -> tuple[dict[str, Any], list[MediaSource]]:
    cfg = emu(request).config
    lo, hi = cfg.default_min_duration_s, cfg.default_max_duration_s
    ctype = request.headers.get("content-type", "")
    raw = await request.body()
    uploads: list[MediaSource] = []
    if ctype.startswith("multipart/form-data"):
        try:
            parts = parse_multipart(ctype, raw)
        except ValueError as exc:
            raise BatchRequestError(f"Malformed multipart body: {exc}") from exc
        body: Any = {}
        for part in parts:
            if part.name == "json":
                # The SDK sends it as a file part, curl as a field; both carry the JSON string.
                try:
                    body = orjson.loads(part.data) if part.data.strip() else {}
                except orjson.JSONDecodeError as exc:
                    raise BatchRequestError("The 'json' part is not valid JSON") from exc
                body = body if body is not None else {}
            elif part.name == "file":
                if len(part.data) > MAX_LOCAL_FILE_BYTES:
                    raise BatchRequestError(f"File '{part.filename}' exceeds the 100 MB limit for local files")
                uploads.append(file_source(part.filename or "file", part.content_type, part.data, lo, hi))
    else:
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise BatchRequestError("Request body is not valid JSON") from exc
    files = [
        {
            "filename": s.source.get("filename"),
            "content_type": s.source.get("content_type"),
            "md5sum": s.source.get("md5sum"),
        }
        for s in uploads
    ]
    normalized = normalize_request(body, files)
    sources = [url_source(u, lo, hi) for u in normalized["urls"]]
    sources.extend(uploads)
    if normalized["text"]:
        sources.append(text_source(normalized["text"]))
    return normalized, sources


async def start_job(request: Request) -> Response:
    state = emu(request)
    try:
        normalized, sources = await _parse_start(request)
    except BatchRequestError as exc:
        return error(400, str(exc))
    job = Job.new(normalized, sources)
    job.should_fail |= state.faults.take_counter("fail_jobs")
    job.drop_callback |= state.faults.take_counter("drop_callbacks")
    job.duplicate_callback |= state.faults.take_counter("duplicate_callbacks")
    state.jobs[job.job_id] = job
    state.spawn(run_job(state, job))
    return json({"job_id": job.job_id})


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    return int(value)


async def list_jobs(request: Request) -> Response:
    state = emu(request)
    q = request.query_params
    try:
        limit = _int_param(request, "limit")
        timestamp_ms = _int_param(request, "timestamp_ms")
    except ValueError:
        return error(400, "limit and timestamp_ms must be integers")
    limit = 50 if limit is None else limit
    if limit < 0:
        return error(400, "limit must be non-negative")
    statuses = q.getlist("status")
    if any(s not in STATUSES for s in statuses):
        return error(400, f"status must be one of {', '.join(STATUSES)}")
    when = q.get("when")
    if when not in (None, "created_before", "created_after"):
        return error(400, "when must be created_before or created_after")
    sort_by = q.get("sort_by") or "created"
    if sort_by not in ("created", "started", "ended"):
        return error(400, "sort_by must be created, started or ended")
    direction = q.get("direction") or "desc"
    if direction not in ("asc", "desc"):
        return error(400, "direction must be asc or desc")
    jobs = list(state.jobs.values())
    if statuses:
        jobs = [j for j in jobs if j.status in statuses]
    if when is not None:
        ts = timestamp_ms if timestamp_ms is not None else now_ms()
        jobs = [j for j in jobs if (j.created_ms < ts if when == "created_before" else j.created_ms > ts)]
    jobs.sort(key=lambda j: (j.sort_key(sort_by), j.created_ms), reverse=direction == "desc")
    return json([j.to_json() for j in jobs[:limit]])


def _job(request: Request) -> Job | None:
    return emu(request).jobs.get(request.path_params["id"])


def _not_found(request: Request) -> Response:
    return error(404, f"Job {request.path_params['id']} not found")


async def job_details(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return _not_found(request)
    return json(job.to_json())


def _not_ready(job: Job) -> Response | None:
    if job.status == "COMPLETED" and job.predictions is not None:
        return None
    if job.status == "FAILED":
        return error(400, f"Job {job.job_id} failed: {job.message}")
    return error(400, f"Job {job.job_id} is not complete yet (status {job.status})")


async def job_predictions(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return _not_found(request)
    problem = _not_ready(job)
    if problem is not None or job.predictions is None:
        return problem or _not_found(request)
    return Response(job.predictions, media_type="application/json")


async def job_artifacts(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return _not_found(request)
    problem = _not_ready(job)
    if problem is not None or job.predictions is None:
        return problem or _not_found(request)
    if job.artifacts is None:
        save_faces = bool((job.request["models"].get("face") or {}).get("save_faces"))
        job.artifacts = await asyncio.to_thread(build_artifacts, job.predictions, save_faces)
    return Response(
        job.artifacts,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{job.job_id}.zip"'},
    )


routes = [
    Route("/v0/batch/jobs", start_job, methods=["POST"]),
    Route("/v0/batch/jobs", list_jobs, methods=["GET"]),
    Route("/v0/batch/jobs/{id}", job_details, methods=["GET"]),
    Route("/v0/batch/jobs/{id}/predictions", job_predictions, methods=["GET"]),
    Route("/v0/batch/jobs/{id}/artifacts", job_artifacts, methods=["GET"]),
]
