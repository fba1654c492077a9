"""/v1/question-sets: create (scope submit), list and read (scope read), edit as a new version, archive; the
answers across jobs (distribution per question, strongest recordings); and GET /v1/jobs/{id}/answers (JSON
pages, or CSV with ?format=csv, Accept: text/csv or the .csv path)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import authorize, existing_job
from app.api.bodies import parse_json_object, read_body
from app.api.long_reads import bounded_stream
from app.api.params import path_uuid
from app.api.responses import JSON, deps
from app.api.typed_input import query_struct
from app.decisions import service
from app.decisions.schemas import AnswerFilterQuery, JobAnswersQuery, QuestionSetListQuery, QuestionSetOut, TopQuery

WRITE = "submit"
READ = "read"


def _set_id(request: Request) -> uuid.UUID:
    return path_uuid(request, "question_set_id", "question set")


async def _body(request: Request) -> dict[str, object]:
    return parse_json_object(await read_body(request, deps(request).settings.max_body_bytes))


def _created(out: QuestionSetOut) -> Response:
    return JSON(out, status_code=201, headers={"Location": f"/v1/question-sets/{out.id}"})


async def create_set(request: Request) -> Response:
    principal = await authorize(request, WRITE)
    return _created(await service.create(deps(request), principal.tenant, await _body(request)))


async def list_sets(request: Request) -> Response:
    principal = await authorize(request, READ)
    query = query_struct(request, QuestionSetListQuery)
    return JSON(await service.page(deps(request), principal.read_tenant, query))


async def get_set(request: Request) -> Response:
    principal = await authorize(request, READ)
    return JSON(await service.get(deps(request), principal.read_tenant, _set_id(request)))


async def edit_set(request: Request) -> Response:
    principal = await authorize(request, WRITE)
    set_id = _set_id(request)
    return _created(await service.edit(deps(request), principal.tenant, set_id, await _body(request)))


async def archive_set(request: Request) -> Response:
    principal = await authorize(request, WRITE)
    return JSON(await service.archive(deps(request), principal.tenant, _set_id(request)))


async def set_versions(request: Request) -> Response:
    principal = await authorize(request, READ)
    return JSON(await service.versions(deps(request), principal.read_tenant, _set_id(request)))


async def distribution(request: Request) -> Response:
    principal = await authorize(request, READ)
    query = query_struct(request, AnswerFilterQuery)
    return JSON(await service.distributions(deps(request), principal.read_tenant, _set_id(request), query))


async def top(request: Request) -> Response:
    principal = await authorize(request, READ)
    query = query_struct(request, TopQuery)
    return JSON(await service.top(deps(request), principal.read_tenant, _set_id(request), query))


def _wants_csv(request: Request, query: JobAnswersQuery) -> bool:
    return query.format == "csv" or request.url.path.endswith(".csv") or "text/csv" in request.headers.get("accept", "")


async def job_answers(request: Request) -> Response:
    await authorize(request, READ)
    job = await existing_job(request)
    query = query_struct(request, JobAnswersQuery)
    d = deps(request)
    if _wants_csv(request, query):
        chunks = service.job_answers_csv(
            d.sessionmaker, job.id, statement_timeout_s=d.settings.export_statement_timeout_s
        )
        return await bounded_stream(
            d, chunks, media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="job-{job.id}-answers.csv"'},
        )  # fmt: skip
    return JSON(await service.job_answers(d, job.id, query))


routes = [
    Route("/v1/question-sets", create_set, methods=["POST"]),
    Route("/v1/question-sets", list_sets, methods=["GET"]),
    Route("/v1/question-sets/{question_set_id}", get_set, methods=["GET"]),
    Route("/v1/question-sets/{question_set_id}", edit_set, methods=["PUT"]),
    Route("/v1/question-sets/{question_set_id}/archive", archive_set, methods=["POST"]),
    Route("/v1/question-sets/{question_set_id}/versions", set_versions, methods=["GET"]),
    Route("/v1/question-sets/{question_set_id}/distribution", distribution, methods=["GET"]),
    Route("/v1/question-sets/{question_set_id}/top", top, methods=["GET"]),
    Route("/v1/jobs/{job_id}/answers", job_answers, methods=["GET"]),
    Route("/v1/jobs/{job_id}/answers.csv", job_answers, methods=["GET"]),
]
