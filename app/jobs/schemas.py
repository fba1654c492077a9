"""Jobs as the API declares them: the submit body, the list's query, the job returned. The structs are the
validation and the OpenAPI document alike; the checks a schema cannot state follow them."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import UNSET, Meta, UnsetType

from app.api.json_limits import check_metadata, check_storable
from app.api.receiver_url import MAX_URL as MAX_NOTIFY_URL
from app.api.typed_input import QueryStruct, body_struct
from app.config import Backend
from app.core.job_status import JobStatus
from app.egress.errors import BlockedUrl
from app.egress.url_guard import media_url
from app.errors import InvalidInput
from app.hume.emotions import MODELS
from app.hume.gateway import validate_models
from app.jobs import options as model_options

MAX_ITEMS = 100  # Hume's per-request cap for URLs and for texts (HUME.md 8)
MAX_URL_LENGTH = 4096
MAX_IDEMPOTENCY_KEY = 255
MAX_PAGE = 500

# The job table's CHECK constraints hold the same values (tests/unit/test_openapi.py compares them).
JobKind = Literal["batch", "evi_chat", "session"]

Url = Annotated[
    str,
    Meta(
        min_length=1, max_length=MAX_URL_LENGTH, description="absolute http(s) URL", extra_json_schema={"format": "uri"}
    ),
]
Text = Annotated[str, Meta(min_length=1, description="a text to analyse (language models)")]
Options = Annotated[dict[str, Any], Meta(description="the model's options, as Hume's batch API takes them")]


class ModelChoice(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The models to run, each with its options ({} for the defaults); omitted: every model."""

    face: Options | UnsetType = UNSET
    prosody: Options | UnsetType = UNSET
    burst: Options | UnsetType = UNSET
    language: Options | UnsetType = UNSET
    ner: Options | UnsetType = UNSET
    facemesh: Options | UnsetType = UNSET


class SubmitJob(msgspec.Struct, forbid_unknown_fields=True):
    """Media URLs and/or texts to analyse (at least one of them)."""

    urls: Annotated[list[Url], Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=list)
    text: Annotated[list[Text], Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=list)
    models: ModelChoice | None = None
    metadata: Annotated[dict[str, Any], Meta(description="yours: stored with the job, filterable")] | None = None
    backend: Backend | None = None
    """batch (Hume's batch API or a compatible server) or v1 (Hume's live API); omitted: HUME_BACKEND's rule."""
    notify_url: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_NOTIFY_URL,
                description="a one-off webhook endpoint told when this job ends (job.completed, job.failed or "
                "job.rejected), signed with the notify_secret of the 202; the URL rules of webhook endpoints",
                extra_json_schema={"format": "uri"},
            ),
        ]
        | None
    ) = None


@dataclass(frozen=True)
class SubmitRequest:
    urls: list[str]
    text: list[str]
    models: dict[str, Any] | None
    metadata: dict[str, Any]
    backend: Backend = "batch"
    notify_url: str | None = None

    def fingerprint(self) -> str:
        fields: dict[str, Any] = {
            "urls": self.urls,
            "text": self.text,
            "models": self.models,
            "metadata": self.metadata,
            "backend": self.backend,
        }
        if self.notify_url is not None:
            # Only when given: the fingerprints of jobs stored before notify_url existed stay valid.
            fields["notify_url"] = self.notify_url
        return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {"urls": self.urls, "text": self.text, "models": self.models}


def _check_strings(key: str, values: list[str]) -> None:
    for i, item in enumerate(values):
        if not item.strip():
            raise InvalidInput(f"{key}[{i}]", "must be a non-empty string")
        if "\x00" in item:
            raise InvalidInput(f"{key}[{i}]", "must not contain NUL characters")


def _check_urls(urls: list[str]) -> None:
    """Each URL read as the media download reads it (httpx) and held to the guard's URL rules: http(s), a
    host every client reads the same way, a port from 1 to 65535, no credentials (jobs are readable by
    every key of the tenant: a password in a URL would be shown to all of them; a presigned URL is not).
    Where the host resolves is judged when the media is fetched."""
    for i, url in enumerate(urls):
        try:
            media_url(url)
        except BlockedUrl as exc:
            raise InvalidInput(f"urls[{i}]", exc.message) from None


def _models(choice: ModelChoice | None, backend: Backend) -> dict[str, Any] | None:
    if choice is None:
        return None
    models: dict[str, Any] = msgspec.to_builtins(choice)
    if not models:
        raise InvalidInput("models", f"must be an object with some of: {', '.join(MODELS)}")
    for name, options in models.items():
        # Options are stored as jsonb with the job and sent to Hume: the same round-trip bounds as metadata.
        check_storable(options, f"models.{name}")
    if backend == "v1":
        return {name: model_options.v1_options(name, options) for name, options in models.items()}
    try:
        checked = validate_models(models)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidInput(field, message) from None
    model_options.check_batch_ranges(checked)
    return checked


def _check_v1(urls: list[str], text: list[str]) -> None:
    if text:
        raise InvalidInput("text", 'the v1 backend measures media files only; text needs backend "batch"')
    if not urls:
        raise InvalidInput("urls", "the v1 backend needs at least one media URL")


def submit_request(data: dict[str, Any], default_backend: Backend = "batch") -> SubmitRequest:
    body = body_struct(data, SubmitJob)
    _check_strings("urls", body.urls)
    _check_urls(body.urls)
    _check_strings("text", body.text)
    if not body.urls and not body.text:
        raise InvalidInput("urls", "give at least one URL (or text)")
    backend = body.backend or default_backend
    if backend == "v1":
        _check_v1(body.urls, body.text)
    models = _models(body.models, backend)
    metadata = {} if body.metadata is None else check_metadata(body.metadata)
    return SubmitRequest(
        urls=body.urls, text=body.text, models=models, metadata=metadata, backend=backend, notify_url=body.notify_url
    )


class JobListQuery(QueryStruct):
    status: JobStatus | None = None
    kind: JobKind | None = None
    hume_id: str | None = None
    created_after: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | None = None
    created_before: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | None = None
    metadata: Annotated[str, Meta(description="a JSON object the job's metadata contains")] | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Meta(description="next_cursor of the previous page")] | None = None


class JobError(msgspec.Struct):
    code: str | None
    message: str


class LastEvent(msgspec.Struct):
    """The job's event that is retrying or dead: why a job is not moving, and where to replay it."""

    id: int
    state: str
    attempts: int
    last_error: str | None
    replay: str


class JobOut(msgspec.Struct):
    """A job; `request` is what was sent to Hume, `details` what the backend learned (EVI chats: config, times;
    v1 jobs with face: `face_states`, each source's last face_state to pass to a later job as
    models.face.face_state, with when it was issued)."""

    id: uuid.UUID
    kind: JobKind
    backend: Backend
    tenant: str
    status: JobStatus
    hume_job_id: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    num_predictions: int
    num_errors: int
    error: JobError | None
    request: dict[str, Any] | None
    metadata: dict[str, Any] | None
    details: dict[str, Any] | None
    last_event: LastEvent | None = None
    hume_metered_seconds: (
        Annotated[
            float | None,
            Meta(description="v1 jobs: the seconds Hume bills for this job's requests so far (audio seconds, 1/3 s "
                 "per image, at least 10 s per request; HUME-V1-FACTS §6), counted against the tenant's daily "
                 "budget (HUME_TENANT_DAILY_SECONDS); null for other backends"),
        ]
    ) = None  # fmt: skip
    notify_secret: (
        Annotated[
            str,
            Meta(description="whsec_...: verifies the notify_url deliveries; only in the 202 that created the job"),
        ]
        | UnsetType
    ) = UNSET


class JobPage(msgspec.Struct):
    items: list[JobOut]
    next_cursor: str | None
