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
from app.api.typed_input import QueryStruct, body_struct, invalid
from app.config import Backend
from app.core.job_status import JobStatus
from app.egress.errors import BlockedUrl
from app.egress.url_guard import media_url
from app.errors import InvalidInput
from app.hume.emotions import MODELS
from app.hume.gateway import validate_models

MAX_ITEMS = 100  # Hume's per-request cap for URLs and for texts (HUME.md 8)
MAX_URL_LENGTH = 4096
MAX_IDEMPOTENCY_KEY = 255
MAX_PAGE = 500
# What Hume's v1 API measures: voice from the audio, faces from the frames. The batch-only models
# (language, ner, burst, facemesh) and text inputs have no v1 endpoint.
V1_MODELS = ("prosody", "face")

# The job table's CHECK constraints hold the same values (tests/unit/test_openapi.py compares them).
JobKind = Literal["batch", "evi_chat"]

Url = Annotated[
    str,
    Meta(
        min_length=1, max_length=MAX_URL_LENGTH, description="absolute http(s) URL", extra_json_schema={"format": "uri"}
    ),
]
Text = Annotated[str, Meta(min_length=1, description="a text to analyse (language models)")]
Options = Annotated[dict[str, Any], Meta(description="the model's options, as Hume's batch API takes them")]

# Hume v1's config ranges and defaults (HUME-V1-FACTS §3; Hume docs: dev.hume.ai/expression-measurement/docs/limits).
# An option left out is not sent, so Hume's own default applies.
FACE_THRESHOLD_DEFAULT = 0.9
FACE_MIN_SIZE_DEFAULT = 60
TIMER_RANGE_MS = (3000, 10_000)
TIMER_DEFAULT_MS = 3000
FACE_STATE_VALID_H = 24
# Our own ceiling on the frames per second sent to Hume for `face`: the batch face model's default rate
# (HUME.md 1.3, fps_pred 3) and Hume v1 realtime's 3 frames/s cap (HUME-V1-FACTS §4). Hume bills 1/3 s per
# image (§6), so this also bounds a video's cost at its own duration.
MAX_FACE_FPS = 3.0


class V1FaceOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`face` options of a job on the v1 backend (Hume's v1 API). Each one left out: the default shown."""

    threshold: (
        Annotated[
            float,
            Meta(ge=0, le=1, description=f"the detection confidence a face needs to be kept, 0 to 1; omitted: Hume's "
                 f"default {FACE_THRESHOLD_DEFAULT}. v1's own scale: batch's prob_threshold values do not carry over"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    min_size: (
        Annotated[
            int,
            Meta(ge=1, description="the smallest face kept, in pixels of its box's shorter side; omitted: Hume's "
                 f"default {FACE_MIN_SIZE_DEFAULT}"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    fps: (
        Annotated[
            float,
            Meta(gt=0, le=MAX_FACE_FPS, description="frames per second of video sent to Hume (each frame is billed as "
                 "1/3 s); omitted: V1_FACE_FPS (default 3)"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    face_state: (
        Annotated[
            str,
            Meta(min_length=1, description="a face_state from an earlier v1 job's details.face_states: its faces keep "
                 f"their face ids here. Hume keeps one valid {FACE_STATE_VALID_H} h and silently ignores an expired "
                 "or foreign one (ids then restart at 0)"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip


class V1ProsodyOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`prosody` options of a job on the v1 backend (Hume's v1 API)."""

    measurement_timer_ms: (
        Annotated[
            int,
            Meta(ge=TIMER_RANGE_MS[0], le=TIMER_RANGE_MS[1],
                 description="one measurement per this many ms of speech (plus one as each utterance ends); "
                 f"omitted: Hume's default {TIMER_DEFAULT_MS}"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip


class BatchWindow(msgspec.Struct, omit_defaults=True):
    length: float | UnsetType | None = UNSET
    step: float | UnsetType | None = UNSET


class BatchFaceOptions(msgspec.Struct, omit_defaults=True):
    """`face` options of a job on the batch backend, as Hume's batch API took them (HUME.md 1.3). Documents only:
    the batch SDK's own schema validates them, and passes fields it does not know on to Hume."""

    fps_pred: float | UnsetType | None = UNSET
    prob_threshold: float | UnsetType | None = UNSET
    identify_faces: bool | UnsetType | None = UNSET
    min_face_size: int | UnsetType | None = UNSET
    facs: dict[str, Any] | UnsetType | None = UNSET
    descriptions: dict[str, Any] | UnsetType | None = UNSET
    save_faces: bool | UnsetType | None = UNSET


class BatchProsodyOptions(msgspec.Struct, omit_defaults=True):
    """`prosody` options of a job on the batch backend, as Hume's batch API took them (HUME.md 1.3)."""

    granularity: Literal["word", "sentence", "utterance", "conversational_turn"] | UnsetType | None = UNSET
    window: BatchWindow | UnsetType | None = UNSET
    identify_speakers: bool | UnsetType | None = UNSET


# Per model with two option sets: (batch's, v1's). The OpenAPI document offers both.
OPTION_SETS: dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]] = {
    "face": (BatchFaceOptions, V1FaceOptions),
    "prosody": (BatchProsodyOptions, V1ProsodyOptions),
}

# Why each v1 option is refused when it is not the right type or range: the field's whole rule.
_V1_RULES = {
    "threshold": f"must be a number from 0 to 1 (omitted: Hume's default {FACE_THRESHOLD_DEFAULT})",
    "min_size": f"must be an integer of at least 1 (pixels; omitted: Hume's default {FACE_MIN_SIZE_DEFAULT})",
    "fps": f"must be a number above 0 and at most {MAX_FACE_FPS:g} (frames per second sent to Hume; omitted: "
    "V1_FACE_FPS)",
    "face_state": "must be a non-empty string: a face_state from an earlier v1 job's details.face_states",
    "measurement_timer_ms": f"must be an integer from {TIMER_RANGE_MS[0]} to {TIMER_RANGE_MS[1]} (ms of speech per "
    f"measurement; omitted: Hume's default {TIMER_DEFAULT_MS})",
}
# Batch options that v1 does not take, each with what to use instead: never translated silently.
_BATCH_ONLY = {
    "face": {
        "prob_threshold": "is a batch option; the v1 backend takes threshold (0 to 1, Hume's default "
        f"{FACE_THRESHOLD_DEFAULT}), on v1's own scale: batch's value (default 0.99) does not carry over",
        "min_face_size": "is a batch option; the v1 backend takes min_size (an integer of at least 1 px, Hume's "
        f"default {FACE_MIN_SIZE_DEFAULT})",
        "fps_pred": f"is a batch option; the v1 backend takes fps (above 0, at most {MAX_FACE_FPS:g})",
        "identify_faces": "is a batch option; the v1 backend always tracks identities (face_id); to continue an "
        "earlier job's, pass its face_state",
        "save_faces": "is a batch option; the v1 backend returns no face crops",
        "facs": "is a batch option; the v1 backend has no FACS output (its measured faces carry descriptions)",
        "descriptions": "is a batch option; the v1 backend always returns descriptions of measured faces",
    },
    "prosody": {
        "granularity": "is a batch option; the v1 backend measures each utterance and every measurement_timer_ms "
        f"of speech ({TIMER_RANGE_MS[0]} to {TIMER_RANGE_MS[1]})",
        "window": "is a batch option; the v1 backend takes measurement_timer_ms (ms of speech per measurement, "
        f"{TIMER_RANGE_MS[0]} to {TIMER_RANGE_MS[1]})",
        "identify_speakers": "is a batch option; the v1 backend does not identify speakers",
    },
}


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
        return {name: _v1_options(name, options) for name, options in models.items()}
    try:
        checked = validate_models(models)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidInput(field, message) from None
    _check_batch_ranges(checked)
    return checked


# The batch options' documented ranges (HUME.md 1.3), which the batch SDK's schema does not check: a value
# outside them failed every try at Hume (fps_pred -1 kept a job in progress for good), so it is a 422 here.
_BATCH_RANGES: dict[tuple[str, ...], tuple[float, float | None, str]] = {
    ("face", "fps_pred"): (0, None, "must be 0 (every frame) or more frames per second"),
    ("face", "prob_threshold"): (0, 1, "must be from 0 to 1"),
    ("face", "min_face_size"): (0, None, "must be 0 or more pixels"),
    ("prosody", "window", "length"): (0.5, None, "must be at least 0.5 seconds"),
    ("prosody", "window", "step"): (0.5, None, "must be at least 0.5 seconds"),
}


def _check_batch_ranges(models: dict[str, Any]) -> None:
    for path, (low, high, rule) in _BATCH_RANGES.items():
        value: Any = models
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < low or (high is not None and value > high):
                raise InvalidInput("models." + ".".join(path), f"{rule}, got {value}")


def _v1_options(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """A v1 model's options as stored and sent: only those given, each in its range."""
    if model not in V1_MODELS:
        raise InvalidInput(
            f"models.{model}", f'the v1 backend measures only {" and ".join(V1_MODELS)}; {model} needs backend "batch"'
        )
    kind = OPTION_SETS[model][1]
    for key in options:
        if key in _BATCH_ONLY[model]:
            raise InvalidInput(f"models.{model}.{key}", _BATCH_ONLY[model][key])
        if key not in kind.__struct_fields__:
            raise InvalidInput(
                f"models.{model}.{key}",
                f"unknown option; the v1 backend's {model} options are {', '.join(kind.__struct_fields__)}",
            )
    try:
        parsed = msgspec.convert(options, kind)
    except msgspec.ValidationError as exc:
        refused = invalid(exc)
        raise InvalidInput(f"models.{model}.{refused.field}", _V1_RULES.get(refused.field, str(refused))) from None
    checked: dict[str, Any] = msgspec.to_builtins(parsed)
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
