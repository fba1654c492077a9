"""/openapi.json generated from the structs the routes validate and answer with, and /docs (Swagger UI from
the swagger-ui-bundle package's files, never a CDN).

Each operation below only names its structs; msgspec writes their JSON Schema (limits included, from the
same `Meta` the validation uses), and query structs are spread into one parameter per field.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from app.admin.schemas import Event, EventListQuery, EventPage
from app.analytics.schemas import (
    PredictionPage,
    PredictionPageQuery,
    PredictionQuery,
    Summary,
    Timeline,
    TimelineQuery,
    TopEmotionQuery,
    TopEmotions,
)
from app.api import hume_failures
from app.api.responses import JSON
from app.api.typed_input import QueryStruct
from app.decisions.estimate import DecisionEstimate
from app.decisions.schemas import (
    AnswerFilterQuery,
    AnswerPage,
    JobAnswersQuery,
    QuestionSetIn,
    QuestionSetListQuery,
    QuestionSetOut,
    QuestionSetPage,
    QuestionSetVersions,
    SetDistributions,
    TopQuery,
    TopRecordings,
)
from app.jobs.options import OPTION_SETS
from app.jobs.schemas import MAX_IDEMPOTENCY_KEY, JobListQuery, JobOut, JobPage, ModelChoice, SubmitJob
from app.notifications.schemas import (
    AttemptPage,
    EndpointIn,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    MessageOut,
    MessagePage,
    MessageQuery,
    PingQueued,
)
from app.sessions.schemas import SessionTokenIn, SessionTokenOut
from app.tokens.routes import AccessToken
from app.tts.schemas import TtsBody, TtsCacheStats, TtsQuery
from app.usage.schemas import UsagePage, UsageQuery
from app.web.error_handlers import ErrorBody

TITLE = "Hume expression service"


# Shapes of what others send us or of tiny fixed answers; they document, they do not validate.
class Ack(msgspec.Struct, omit_defaults=True):
    """A webhook delivery stored and queued (202) or a duplicate of a stored one (200)."""

    status: Literal["accepted", "duplicate"]
    event_id: int | None = None


class HumeBatchCallback(msgspec.Struct):
    """Hume's batch job callback (HUME.md 2.1)."""

    job_id: str
    status: Literal["COMPLETED", "FAILED"] | None = None
    predictions: list[dict[str, Any]] | None = None
    message: str | None = None


class HumeCallbackQuery(QueryStruct):
    job_id: str | None = None
    token: str | None = None


class EviWebhook(msgspec.Struct):
    """Hume's EVI webhook event (chat_started, chat_ended, tool_call)."""

    event_name: Literal["chat_started", "chat_ended", "tool_call"]
    chat_id: str
    chat_group_id: str | None = None
    config_id: str | None = None


class Health(msgspec.Struct, omit_defaults=True):
    status: Literal["ok", "ready", "unavailable"]
    database: str | None = None


def _content(media: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or {"type": "string"}}}}


AUDIO = {
    "description": "audio bytes (chunked when stream is true), or Hume's JSON with ?format=json",
    "headers": {"X-Cache": {"schema": {"type": "string", "enum": ["hit", "miss"]}}},
    "content": {
        **{t: {"schema": {"type": "string", "format": "binary"}} for t in ("audio/mpeg", "audio/wav", "audio/pcm")},
        "application/json": {"schema": {"type": "object", "description": "Hume's TTS JSON, as Hume sent it"}},
    },
}


@dataclass(frozen=True)
class Op:
    path: str
    method: str
    summary: str
    scope: str | None = "read"  # None: no API key (public, or authenticated otherwise)
    query: type[QueryStruct] | None = None
    body: type[msgspec.Struct] | None = None
    ok: dict[int, Any] = field(default_factory=dict)  # status: struct, structs (one of), or a ready response object
    errors: tuple[int, ...] = ()
    headers: tuple[dict[str, Any], ...] = ()


_HUME = hume_failures.STATUSES
OPERATIONS = (
    Op("/v1/jobs", "post", "Submit media URLs or texts for analysis (202); an Idempotency-Key retry answers the job "
       "made before (200); with decisions.estimate, the input-token estimate at once (200, no job created)",
       "submit", body=SubmitJob, ok={202: JobOut, 200: (JobOut, DecisionEstimate)}, errors=(401, 403, 409, 413, 422),
       headers=({"name": "Idempotency-Key", "in": "header",
                 "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY}},)),
    Op("/v1/jobs", "get", "List jobs, newest first", query=JobListQuery, ok={200: JobPage}, errors=(401, 403, 422)),
    Op("/v1/jobs/{job_id}", "get", "A job", ok={200: JobOut}, errors=(401, 403, 404)),
    Op("/v1/jobs/{job_id}/summary", "get", "Per model: prediction count, every emotion's mean and max",
       ok={200: Summary}, errors=(401, 403, 404)),
    Op("/v1/jobs/{job_id}/timeline", "get", "An emotion's mean per time bucket", query=TimelineQuery,
       ok={200: Timeline}, errors=(401, 403, 404, 410, 422)),
    Op("/v1/jobs/{job_id}/predictions", "get", "A job's predictions in pages (CSV with Accept: text/csv)",
       query=PredictionPageQuery, ok={200: PredictionPage}, errors=(401, 403, 404, 410, 422)),
    Op("/v1/jobs/{job_id}/predictions.csv", "get", "A job's predictions as CSV, one column per emotion (streamed)",
       query=PredictionQuery, ok={200: _content("text/csv", "CSV: time_begin, time_end, ..., one column per emotion")},
       errors=(401, 403, 404, 410, 422)),
    Op("/v1/emotions/top", "get", "Across jobs: the sources where an emotion is strongest", query=TopEmotionQuery,
       ok={200: TopEmotions}, errors=(401, 403, 422)),
    Op("/v1/webhooks/hume/batch", "post", "Hume's batch job callback (the per-job token in the URL)", None,
       query=HumeCallbackQuery, body=HumeBatchCallback, ok={202: Ack, 200: Ack}, errors=(400, 401, 404, 413, 503)),
    Op("/v1/webhooks/hume/evi", "post", "Hume's EVI webhooks, verified by HMAC-SHA256 over body + '.' + timestamp",
       None, body=EviWebhook, ok={202: Ack, 200: Ack}, errors=(401, 413, 422, 503),
       headers=tuple({"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
                     for h in ("X-Hume-AI-Webhook-Signature", "X-Hume-AI-Webhook-Timestamp"))),
    Op("/api/hume/auth", "get", "A Hume access token for a browser frontend, cached until near expiry", "token",
       ok={200: AccessToken}, errors=(401, 403, 404, 410, *_HUME)),
    Op("/v1/session-tokens", "post", "A token a browser opens one live session with (ws /v1/sessions/audio or /video)",
       "session", body=SessionTokenIn, ok={201: SessionTokenOut}, errors=(401, 403, 413, 422)),
    Op("/v1/tts", "post", "Text to speech through Hume, cached in Postgres", "tts", query=TtsQuery, body=TtsBody,
       ok={200: AUDIO}, errors=(401, 403, 410, 413, 422, *hume_failures.CLIENT_SHAPED_STATUSES)),
    Op("/v1/tts/cache/stats", "get", "TTS cache size, bound and hit counts", "tts", ok={200: TtsCacheStats},
       errors=(401, 403)),
    Op("/v1/admin/events", "get", "Stored webhook events, newest first; state=dead lists what needs a replay",
       "admin", query=EventListQuery, ok={200: EventPage}, errors=(401, 403, 422)),
    Op("/v1/admin/events/{event_id}/replay", "post", "Process a stored event again; a done event answers 409",
       "admin", ok={202: Event}, errors=(401, 403, 404, 409)),
    Op("/v1/webhook-endpoints", "post", "Register an endpoint for our signed webhooks; its secret is shown once",
       "webhooks", body=EndpointIn, ok={201: EndpointOut}, errors=(401, 403, 422)),
    Op("/v1/webhook-endpoints", "get", "Your webhook endpoints", "webhooks", ok={200: EndpointPage},
       errors=(401, 403)),
    Op("/v1/webhook-endpoints/{endpoint_id}", "get", "A webhook endpoint", "webhooks", ok={200: EndpointOut},
       errors=(401, 403, 404)),
    Op("/v1/webhook-endpoints/{endpoint_id}", "patch", "Change an endpoint's url, events, description or disabled",
       "webhooks", body=EndpointPatch, ok={200: EndpointOut}, errors=(401, 403, 404, 422)),
    Op("/v1/webhook-endpoints/{endpoint_id}", "delete", "Delete an endpoint", "webhooks",
       ok={204: _content("text/plain", "deleted")}, errors=(401, 403, 404)),
    Op("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "post",
       "A new secret; the old one keeps signing beside it for 24 h", "webhooks", ok={200: EndpointOut},
       errors=(401, 403, 404)),
    Op("/v1/webhook-endpoints/{endpoint_id}/test", "post", "Send a ping to the endpoint", "webhooks",
       ok={202: PingQueued}, errors=(401, 403, 404, 409)),
    Op("/v1/webhook-endpoints/{endpoint_id}/messages", "get", "Messages sent to an endpoint, newest first",
       "webhooks", query=MessageQuery, ok={200: MessagePage}, errors=(401, 403, 404, 422)),
    Op("/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts", "get",
       "Every delivery attempt of a message", "webhooks", ok={200: AttemptPage}, errors=(401, 403, 404)),
    Op("/v1/webhook-messages/{message_id}/retry", "post", "Send a message again now", "webhooks",
       ok={202: MessageOut}, errors=(401, 403, 404, 409)),
    Op("/v1/question-sets", "post", "Create an Audio Decisions question set, checked as Hume checks one (422 names"
       " the JSON Pointer and the rule)", "submit", body=QuestionSetIn, ok={201: QuestionSetOut},
       errors=(401, 403, 413, 422)),
    Op("/v1/question-sets", "get", "Your question sets, each family's newest version, newest first",
       query=QuestionSetListQuery, ok={200: QuestionSetPage}, errors=(401, 403, 422)),
    Op("/v1/question-sets/{question_set_id}", "get", "A question set version", ok={200: QuestionSetOut},
       errors=(401, 403, 404)),
    Op("/v1/question-sets/{question_set_id}", "put", "Edit: the family's next version (this one stays as it is);"
       " only the newest version of a set not archived (409)", "submit", body=QuestionSetIn,
       ok={201: QuestionSetOut}, errors=(401, 403, 404, 409, 413, 422)),
    Op("/v1/question-sets/{question_set_id}/archive", "post", "Archive the set (every version): unlisted, refused"
       " to new jobs", "submit", ok={200: QuestionSetOut}, errors=(401, 403, 404)),
    Op("/v1/question-sets/{question_set_id}/versions", "get", "Every version of the set's family, oldest first",
       ok={200: QuestionSetVersions}, errors=(401, 403, 404)),
    Op("/v1/question-sets/{question_set_id}/distribution", "get", "Each question's answers across jobs (or one"
       " question's): share histogram, option shares, score spread, span time", query=AnswerFilterQuery,
       ok={200: SetDistributions}, errors=(401, 403, 404, 422)),
    Op("/v1/question-sets/{question_set_id}/top", "get", "The recordings that answer a question most strongly"
       " (or weakly), each by its strongest window", query=TopQuery, ok={200: TopRecordings},
       errors=(401, 403, 404, 422)),
    Op("/v1/jobs/{job_id}/answers", "get", "A job's Audio Decisions answers in pages (CSV with ?format=csv or"
       " Accept: text/csv)", query=JobAnswersQuery,
       ok={200: AnswerPage}, errors=(401, 403, 404, 422)),
    Op("/v1/jobs/{job_id}/answers.csv", "get", "A job's answers as CSV, recording by recording (streamed)",
       ok={200: _content("text/csv", "CSV: job_id, source_index, ..., raw")}, errors=(401, 403, 404)),
    Op("/v1/usage", "get", "What Hume billed (metered seconds), grouped by day, tenant, backend or metadata.<key>,"
       " priced with HUME_PRICE_PER_MINUTE", query=UsageQuery, ok={200: UsagePage}, errors=(401, 403, 422)),
    Op("/healthz", "get", "Liveness", None, ok={200: Health}),
    Op("/readyz", "get", "Readiness: the database answers", None, ok={200: Health, 503: Health}),
    Op("/metrics", "get", "Prometheus metrics", None, ok={200: _content("text/plain", "Prometheus text format")}),
    Op("/openapi.json", "get", "This document", None,
       ok={200: _content("application/json", "OpenAPI 3.1", {"type": "object"})}),
    Op("/docs", "get", "This document, browsable (Swagger UI)", None, ok={200: _content("text/html", "HTML")}),
)  # fmt: skip

_PATH_PARAMS = {
    "job_id": {"type": "string", "format": "uuid"},
    "event_id": {"type": "integer", "minimum": 1},
    "endpoint_id": {"type": "string", "format": "uuid"},
    "message_id": {"type": "integer", "minimum": 1},
    "question_set_id": {"type": "string", "format": "uuid"},
}
_REF = "#/components/schemas/{name}"


def _path_params(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [{"name": n, "in": "path", "required": True, "schema": _PATH_PARAMS[n]} for n in names]


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional field's schema without its null branch: a query parameter is absent, never null."""
    branches = [b for b in prop.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) != 1:
        return prop
    rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default") or (k == "default" and v is not None)}
    return {**branches[0], **rest}


def _query_params(kind: type[QueryStruct], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = components.pop(kind.__name__)
    required = set(schema.get("required", []))
    props = {name: _not_null(prop) for name, prop in schema["properties"].items()}
    params = [
        {"name": name, "in": "query", "required": name in required, "schema": prop} for name, prop in props.items()
    ]
    for old, new in kind.aliases.items():
        prop = props[new]
        params.append({"name": old, "in": "query", "deprecated": True, "description": f"old name of {new}",
                       "schema": prop})  # fmt: skip
    return params


def _offer_option_sets(components: dict[str, Any], refs: dict[Any, Any]) -> None:
    """A model with options per backend takes either set: which one applies depends on the job's backend,
    which the body may leave to HUME_BACKEND, so the schema cannot pick one. anyOf, not oneOf: {} is valid
    in both."""
    properties = components[ModelChoice.__name__]["properties"]
    for model, (batch, v1) in OPTION_SETS.items():
        properties[model] = {
            "anyOf": [refs[batch], refs[v1]],
            "description": f"{model} options: {batch.__name__} on a batch-backend job, {v1.__name__} on a v1-backend "
            "job (the job's backend, else HUME_BACKEND's rule). A v1 job refuses batch options (422 naming the v1 "
            "option to use instead) and unknown ones.",
        }


def _response(ok: Any, refs: dict[Any, Any], description: str) -> dict[str, Any]:
    if isinstance(ok, dict):
        return ok
    schema = {"oneOf": [refs[kind] for kind in ok]} if isinstance(ok, tuple) else refs[ok]
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@functools.cache
def document() -> dict[str, Any]:
    kinds: list[Any] = [ErrorBody]
    for op in OPERATIONS:
        kinds += [k for k in (op.query, op.body) if k is not None]
        kinds += [
            k for ok in op.ok.values() if not isinstance(ok, dict) for k in (ok if isinstance(ok, tuple) else (ok,))
        ]
    kinds += [kind for pair in OPTION_SETS.values() for kind in pair]
    kinds = list(dict.fromkeys(kinds))
    schemas, components = msgspec.json.schema_components(kinds, ref_template=_REF)
    refs = dict(zip(kinds, schemas, strict=True))
    _offer_option_sets(components, refs)
    error = {"description": "error", "content": {"application/json": {"schema": refs[ErrorBody]}}}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": op.summary + (f" (scope: {op.scope})" if op.scope else ""),
            "parameters": [
                *_path_params(op.path),
                *(_query_params(op.query, components) if op.query else []),
                *op.headers,
            ],
            "responses": {
                **{str(status): _response(ok, refs, "OK") for status, ok in op.ok.items()},
                **{str(status): error for status in op.errors},
                # Every route that takes an API key: too many wrong keys from the client's address (auth_throttle).
                **({"429": error} if op.scope else {}),
            },
        }
        if op.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[op.body]}}}
        if op.scope is None:
            operation["security"] = []
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": "0.1.0"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": components},
        "security": [{"bearer": []}],
        "paths": paths,
    }


async def openapi_json(request: Request) -> Response:
    return JSON(document())


_DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/docs-init.js"></script>
</body></html>"""
# A file, not inline script, so a strict Content-Security-Policy (script-src 'self') still allows it. The key
# pasted into Authorize stays in the page's memory: persisted, it would sit in localStorage for any script of
# this origin (and anyone at this browser) to read after the tab is closed.
_DOCS_INIT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", persistAuthorization: false});\n'
# The page takes an API key: it is never framed (clickjacking), by CSP and, for older browsers, X-Frame-Options.
# Swagger UI sets style attributes and draws icons as data: images, hence those two allowances.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS_PAGE, headers=DOCS_HEADERS)


async def docs_init(request: Request) -> Response:
    return Response(_DOCS_INIT, media_type="text/javascript")


routes: list[BaseRoute] = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    # Mounts are not operations: the unit test's route walk (and the document) covers Routes only.
    Mount(
        "/docs/static",
        routes=[Route("/docs-init.js", docs_init), Mount("/", StaticFiles(directory=str(swagger_ui_path)))],
    ),
]
