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
from app.decisions.jobs import DEFAULT_WINDOW_S, MAX_WINDOW_S, MIN_WINDOW_S
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


class DecisionsChoice(msgspec.Struct, forbid_unknown_fields=True):
    """Audio Decisions: a question set's questions asked about each URL's audio, window by window (each window's
    answers stored with its time span). Runs on the v1 backend; `models` beside it are measured too, and without
    `models` only the questions are asked."""

    question_set: Annotated[
        uuid.UUID,
        Meta(description="the id of a question set version (POST /v1/question-sets) of this key's tenant, not "
             "archived; the job keeps that version's questions, whatever edits come later"),
    ]  # fmt: skip
    window_s: Annotated[
        int,
        Meta(ge=MIN_WINDOW_S, le=MAX_WINDOW_S,
             description="seconds of audio per window (Hume answers 1 s to 5 min per request and advises 5 s or "
             "more); each cut moves to the quietest 100 ms within 2 s of its boundary, and a last window under "
             "5 s joins the one before"),
    ] = DEFAULT_WINDOW_S  # fmt: skip
    estimate: Annotated[
        bool,
        Meta(description="true: create no job; answer at once (200) with Hume's input-token estimate for every "
             "window of every URL (Hume's free input_tokens endpoint)"),
    ] = False  # fmt: skip


class SubmitJob(msgspec.Struct, forbid_unknown_fields=True):
    """Media URLs and/or texts to analyse (at least one of them)."""

    urls: Annotated[list[Url], Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=list)
    text: Annotated[list[Text], Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=list)
    models: ModelChoice | None = None
    metadata: Annotated[dict[str, Any], Meta(description="yours: stored with the job, filterable")] | None = None
    backend: Backend | None = None
    """batch (Hume's batch API or a compatible server) or v1 (Hume's live API); omitted: HUME_BACKEND's rule
    (v1 with decisions)."""
    decisions: DecisionsChoice | None = None
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
    decisions: dict[str, Any] | None = None
    """{"question_set": id, "window_s": seconds}: pinned to the set's version when the job is stored."""
    estimate: bool = False
    """Answer the decisions' input-token estimate instead of creating a job."""

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
        if self.decisions is not None:
            fields["decisions"] = self.decisions
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


def _decisions_backend(body: SubmitJob) -> Backend:
    """Decisions run where the service fetches the media itself: the v1 backend."""
    if body.backend not in (None, "v1"):
        raise InvalidInput(
            "backend", 'decisions run on the v1 backend (the service fetches each URL); omit backend or give "v1"'
        )
    if body.text:
        raise InvalidInput("text", "decisions are asked about audio: give media URLs, not texts")
    if not body.urls:
        raise InvalidInput("urls", "decisions need at least one media URL")
    return "v1"


def submit_request(data: dict[str, Any], default_backend: Backend = "batch") -> SubmitRequest:
    body = body_struct(data, SubmitJob)
    _check_strings("urls", body.urls)
    _check_urls(body.urls)
    _check_strings("text", body.text)
    if not body.urls and not body.text:
        raise InvalidInput("urls", "give at least one URL (or text)")
    backend = _decisions_backend(body) if body.decisions else body.backend or default_backend
    if backend == "v1":
        _check_v1(body.urls, body.text)
    models = _models(body.models, backend)
    metadata = {} if body.metadata is None else check_metadata(body.metadata)
    decisions = None
    if body.decisions is not None:
        decisions = {"question_set": str(body.decisions.question_set), "window_s": body.decisions.window_s}
        if body.decisions.estimate and body.notify_url is not None:
            raise InvalidInput("notify_url", "an estimate creates no job, so there is nothing to notify")
    return SubmitRequest(
        urls=body.urls, text=body.text, models=models, metadata=metadata, backend=backend, notify_url=body.notify_url,
        decisions=decisions, estimate=body.decisions is not None and body.decisions.estimate,
    )  # fmt: skip


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
    predictions_expired_at: (
        Annotated[
            datetime | None,
            Meta(description="when retention (PREDICTION_RETENTION_DAYS, or the tenant's own) dropped the job's "
                 "predictions: its pages, CSV and timeline answer 410 predictions_expired, its summary remains"),
        ]
    ) = None  # fmt: skip
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
