"""The analyst API as declared: query parameters and response shapes of summary, timeline, predictions and
top emotions. Names agree with the CSV export and the `prediction_score` SQL view: `time_begin`/`time_end`
(seconds), `scores` by emotion name, rounded to what Postgres' float4 scores carry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app.api.typed_input import QueryStruct
from app.store.tables import JOB_STATUSES

# app.hume.emotions.MODELS holds the same names (tests/unit/test_openapi.py compares them).
Model = Literal["face", "prosody", "burst", "language", "ner", "facemesh"]
Emotion = Annotated[str, Meta(min_length=1, description="an emotion name of the model, any case (joy = Joy)")]
Seconds = Annotated[float, Meta(ge=0, le=1e9)]
DateTimeText = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
MAX_PREDICTIONS_PAGE = 5000
MAX_TOP = 500


class TimelineQuery(QueryStruct):
    aliases: ClassVar[dict[str, str]] = {"bucket": "bucket_s"}

    model: Model
    emotion: Emotion
    bucket_s: Annotated[float, Meta(ge=0.001, le=86_400, description="bucket width in seconds")] = 1.0
    per_group: Annotated[bool, Meta(description="one series per group (face, speaker) instead of one")] = False


class PredictionQuery(QueryStruct):
    """Filters shared by the JSON pages and the CSV export."""

    model: Model | None = None
    source: Annotated[int, Meta(ge=0, le=2**63 - 1, description="a source id")] | None = None
    group: str | None = None
    from_s: Annotated[Seconds, Meta(description="rows ending at or after (s)")] | None = msgspec.field(
        default=None, name="from"
    )
    to_s: Annotated[Seconds, Meta(description="rows beginning before (s)")] | None = msgspec.field(
        default=None, name="to"
    )


class PredictionPageQuery(PredictionQuery):
    limit: Annotated[int, Meta(ge=1, le=MAX_PREDICTIONS_PAGE)] = 500
    cursor: Annotated[str, Meta(description="next_cursor of the previous page")] | None = None


class TopEmotionQuery(QueryStruct):
    model: Model
    emotion: Emotion
    by: Literal["mean", "max"] = "mean"
    limit: Annotated[int, Meta(ge=1, le=MAX_TOP)] = 20
    created_after: DateTimeText | None = None
    created_before: DateTimeText | None = None
    metadata: Annotated[str, Meta(description="a JSON object the job's metadata contains")] | None = None


class EmotionStat(msgspec.Struct):
    name: str
    mean: Annotated[float, Meta(description="over every prediction; one where the emotion was absent counts 0")]
    max: float
    present: Annotated[float, Meta(description="the share of predictions that scored this emotion (v1 is sparse)")]


class ModelSummary(msgspec.Struct):
    predictions: int
    emotions: Annotated[list[EmotionStat], Meta(description="every emotion, highest mean first")]
    top: Annotated[list[str], Meta(description="the three highest means")]


class Summary(msgspec.Struct):
    job_id: uuid.UUID
    status: Annotated[str, Meta(extra_json_schema={"enum": list(JOB_STATUSES)})]
    models: dict[str, ModelSummary]
    predictions_expired: Annotated[
        bool,
        Meta(description="retention dropped the job's predictions (its pages, CSV and timeline answer 410 "
             "predictions_expired); this summary was computed when they were stored and remains"),
    ] = False  # fmt: skip


class TimelinePoint(msgspec.Struct, omit_defaults=True):
    time_begin: Annotated[float, Meta(description="the bucket's start (s)")]
    mean: float
    max: float
    count: int
    present: Annotated[int, Meta(description="predictions in the bucket that scored this emotion")]
    group: str | UnsetType | None = UNSET  # only with per_group


class Timeline(msgspec.Struct):
    job_id: uuid.UUID
    model: Model
    emotion: str
    bucket_s: float
    points: list[TimelinePoint]


class Box(msgspec.Struct):
    x: float
    y: float
    w: float
    h: float


class Prediction(msgspec.Struct):
    """One prediction; a model's own extras (facs, descriptions, sentiment, toxicity, ...) sit alongside."""

    id: int
    source_id: int
    source_url: str | None
    file: str | None
    model: Model
    group: str | None
    frame: int | None
    time_begin: float | None
    time_end: float | None
    prob: float | None
    box: Box | None
    text: str | None
    position_begin: int | None
    position_end: int | None
    confidence: float | None
    speaker_confidence: float | None
    scores: Annotated[dict[str, float], Meta(description="score by emotion name")]


class PredictionPage(msgspec.Struct):
    items: list[Prediction]
    next_cursor: str | None


class TopSource(msgspec.Struct):
    job_id: uuid.UUID
    source_id: int
    source_url: str | None
    source_filename: str | None
    emotion: str
    mean: float
    max: float
    predictions: int
    job_created_at: datetime
    job_metadata: dict[str, Any] | None


class TopEmotions(msgspec.Struct):
    model: Model
    emotion: str
    by: Literal["mean", "max"]
    items: list[TopSource]
