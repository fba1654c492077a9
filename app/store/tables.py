"""Table definitions. Alembic migrations create them; tests check the two never drift apart."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core import job_status

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = job_status.NAMES
JOB_KINDS = ("batch", "evi_chat", "session")
EVENT_STATES = ("received", "processing", "done", "dead", "ignored")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(Text, unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    tenant: Mapped[str] = mapped_column(Text, server_default="default")
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),
        CheckConstraint(f"kind IN {JOB_KINDS}", name="kind"),
        UniqueConstraint("kind", "hume_job_id"),
        UniqueConstraint("api_key_id", "idempotency_key"),
        Index("ix_job_created_at", "created_at"),
        Index("ix_job_status_deadline", "status", "deadline_at"),
        Index("ix_job_tenant_created_at", "tenant", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, server_default="batch")
    backend: Mapped[str] = mapped_column(Text, server_default="batch")
    tenant: Mapped[str] = mapped_column(Text, server_default="default")
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    hume_job_id: Mapped[str | None] = mapped_column(Text)
    callback_token_hash: Mapped[str | None] = mapped_column(Text)
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    job_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=text("'{}'::jsonb"))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("api_key.id"))
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_fingerprint: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    num_predictions: Mapped[int] = mapped_column(Integer, server_default="0")
    num_errors: Mapped[int] = mapped_column(Integer, server_default="0")
    submit_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    predictions_expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When retention dropped a month holding some of the job's predictions (its summary stays)."""


class InboxEvent(Base):
    """Every delivery we accepted, verbatim: the durable record the worker processes and replays."""

    __tablename__ = "inbox_event"
    __table_args__ = (
        CheckConstraint(f"state IN {EVENT_STATES}", name="state"),
        Index("ix_inbox_event_state", "state"),
        Index("ix_inbox_event_job_id", "job_id"),
        Index(
            "ix_inbox_event_prunable", "processed_at",
            postgresql_where=text("state IN ('done', 'ignored') AND body_pruned_at IS NULL"),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(Text, unique=True)
    event_type: Mapped[str] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"))
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(Text, server_default="received")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = _now()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    body_pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the body of this processed event was emptied (INBOX_BODY_RETENTION_H); the row stays for dedup."""


class Emotion(Base):
    """Position of each emotion in a model's score arrays; unknown names extend it at ingest."""

    __tablename__ = "emotion"
    __table_args__ = (UniqueConstraint("model", "name"),)

    model: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class Source(Base):
    __tablename__ = "source"
    __table_args__ = (UniqueConstraint("job_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    md5sum: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    file_errors: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    files: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    """Files inside the source (archives hold several) with their file_type and model metadata."""


class Prediction(Base):
    """One row per Hume prediction; scores in the model's canonical emotion order (see Emotion). Partitioned by
    tenant, then by the UTC month it was stored in (migration 0018, app/store/prediction_partitions.py)."""

    __tablename__ = "prediction"
    # The one index: a job's rows in id order (cursor pages, CSV exports read only what they return), with the
    # partition keys a partitioned table's key must hold. No foreign keys: see migration 0018.
    __table_args__ = (
        PrimaryKeyConstraint("job_id", "id", "tenant", "stored_at", name="pk_prediction"),
        {"postgresql_partition_by": "LIST (tenant)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID)
    source_id: Mapped[int] = mapped_column(BigInteger)
    file: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    group_id: Mapped[str | None] = mapped_column(Text)
    frame: Mapped[int | None] = mapped_column(Integer)
    time_begin: Mapped[float | None] = mapped_column(Float)
    time_end: Mapped[float | None] = mapped_column(Float)
    prob: Mapped[float | None] = mapped_column(Float)
    box: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    text: Mapped[str | None] = mapped_column(Text)
    position_begin: Mapped[int | None] = mapped_column(Integer)
    position_end: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float)
    speaker_confidence: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    extras: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """facs, descriptions, sentiment, toxicity, ner entity fields: whatever else Hume said."""
    tenant: Mapped[str] = mapped_column(Text)
    """The job's tenant: the first partition key."""
    stored_at: Mapped[datetime] = _now()
    """The storing transaction's start: the second partition key (UTC months); never before the job's creation."""


class PredictionRetention(Base):
    """A tenant's own retention of predictions in days (0: for good), over PREDICTION_RETENTION_DAYS."""

    __tablename__ = "prediction_retention"
    __table_args__ = (CheckConstraint("days >= 0", name="days"),)

    tenant: Mapped[str] = mapped_column(Text, primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = _now()


class EmotionStat(Base):
    """Per source and model aggregates written at ingest: summaries and top-emotion queries never scan
    predictions."""

    __tablename__ = "emotion_stat"
    __table_args__ = (Index("ix_emotion_stat_model_name_mean", "model", "name", "mean"),)

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(BigInteger)
    """How many of the source's predictions of this model scored this emotion."""
    mean: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)


class ModelStat(Base):
    """Predictions per source and model, written at ingest (also for models whose predictions scored
    nothing, which have no emotion_stat rows)."""

    __tablename__ = "model_stat"

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger)


class TtsCacheEntry(Base):
    """A TTS result kept to answer the same request again (key: SHA-256 of the normalized request)."""

    __tablename__ = "tts_cache"
    __table_args__ = (Index("ix_tts_cache_last_used_at", "last_used_at"),)

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    """audio (the file bytes) or json (Hume's ReturnTts document)."""
    content_type: Mapped[str] = mapped_column(Text)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    generation_id: Mapped[str | None] = mapped_column(Text)
    hits: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime] = _now()


MESSAGE_STATES = ("pending", "delivered", "failed")


class WebhookEndpoint(Base):
    """Where we send our own webhooks; owned by the API key that registered it."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (
        Index("ix_webhook_endpoint_api_key_id", "api_key_id"),
        Index("ix_webhook_endpoint_job_id", "job_id", postgresql_where=text("job_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("api_key.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    description: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    """Kept in clear text: HMAC signing needs it (unlike API keys, which we only compare)."""
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the current run of failed attempts began; cleared by any success."""
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"))
    """Set for a job's `notify_url`: the endpoint hears that job's end only."""
    created_at: Mapped[datetime] = _now()


class WebhookMessage(Base):
    """One event for one endpoint (the outbox row, written in the transaction that ended the job)."""

    __tablename__ = "webhook_message"
    __table_args__ = (
        CheckConstraint(f"state IN {MESSAGE_STATES}", name="state"),
        Index("ix_webhook_message_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_message_state_created_at", "state", "created_at"),
        # The claim of an endpoint's due messages, oldest first (migration 0019).
        Index(
            "ix_webhook_message_pending_endpoint_id_created_at",
            "endpoint_id",
            "created_at",
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    event_type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    msg_id: Mapped[str] = mapped_column(Text, unique=True)
    """The `webhook-id` header: the same for every attempt, so receivers can deduplicate."""
    state: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    """Attempts in the current round (a manual retry or replay starts a new round)."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_message_id_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_message.id", ondelete="CASCADE"))
    at: Mapped[datetime] = _now()
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_snippet: Mapped[str | None] = mapped_column(Text)
    """At most the first 500 bytes of the receiver's answer (decoded leniently)."""
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class V1Chunk(Base):
    """One measured chunk of a v1 job's source medium (chunk -1: the medium's outcome); see migration 0005."""

    __tablename__ = "v1_chunk"
    __table_args__ = (
        PrimaryKeyConstraint("job_id", "source_index", "medium", "chunk", name="pk_v1_chunk"),
        CheckConstraint("medium IN ('audio', 'video')", name="ck_v1_chunk_medium"),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"))
    source_index: Mapped[int] = mapped_column(Integer)
    medium: Mapped[str] = mapped_column(Text)
    chunk: Mapped[int] = mapped_column(Integer)
    start_ms: Mapped[int | None] = mapped_column(BigInteger)
    request_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    face_state: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    frames: Mapped[list[Any] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class RequestBudget(Base):
    """A request rate shared by every process (GCRA): `tat` is when the budget is next fully rested; see
    migration 0010 and app/store/request_budget.py."""

    __tablename__ = "request_budget"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    tat: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HumeUsage(Base):
    """One v1 request's Hume bill (metered seconds, estimated before sending; HUME-V1-FACTS §6), or one Audio
    Decisions window's (`medium` decisions: input tokens), charged to its job's tenant on the UTC day it was
    sent; see migrations 0011 and 0020 and app/store/hume_usage.py."""

    __tablename__ = "hume_usage"
    __table_args__ = (
        CheckConstraint("medium IN ('audio', 'video', 'decisions')", name="ck_hume_usage_medium"),
        CheckConstraint("state IN ('sent', 'billed')", name="ck_hume_usage_state"),
        CheckConstraint("billing IN ('pending', 'hume', 'estimate')", name="ck_hume_usage_billing"),
        Index("ix_hume_usage_job_id", "job_id"),
        Index("ix_hume_usage_billing_due", "billing_due_at", postgresql_where=text("billing = 'pending'")),
        Index("ix_hume_usage_run_id", "run_id"),
        Index("ix_hume_usage_day_tenant", "day", "tenant"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(Text)
    day: Mapped[date] = mapped_column(Date)
    source_index: Mapped[int] = mapped_column(Integer)
    medium: Mapped[str] = mapped_column(Text)
    chunk: Mapped[int] = mapped_column(Integer)
    """The request's chunk (v1) or window (decisions) of its source."""
    seconds: Mapped[float] = mapped_column(Float, server_default="0")
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    """Decisions only: the estimate reserved, then what Hume's answer billed (migration 0020)."""
    state: Mapped[str] = mapped_column(Text, server_default="sent")
    request_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    # Hume's own figure (runs API) beside the estimate above, and which counts: migration 0015.
    billed_seconds: Mapped[float | None] = mapped_column(Float)
    billing: Mapped[str] = mapped_column(Text, server_default="estimate")
    billing_tries: Mapped[int] = mapped_column(Integer, server_default="0")
    billing_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HumeRunCheck(Base):
    """When a periodic check of Hume's runs last ran (claimed atomically, so it runs at most once per period)."""

    __tablename__ = "hume_run_check"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HumeTenantDay(Base):
    """A tenant's Hume-metered seconds and Audio Decisions input tokens of one UTC day, and the limits in force
    at their last reservations."""

    __tablename__ = "hume_tenant_day"
    __table_args__ = (PrimaryKeyConstraint("tenant", "day", name="pk_hume_tenant_day"),)

    tenant: Mapped[str] = mapped_column(Text)
    day: Mapped[date] = mapped_column(Date)
    seconds: Mapped[float] = mapped_column(Float, server_default="0")
    limit_seconds: Mapped[int] = mapped_column(BigInteger, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    limit_input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")


class HumeTenantBudget(Base):
    """An operator's overrides of HUME_TENANT_DAILY_SECONDS and HUME_TENANT_DAILY_DECISION_TOKENS for one tenant
    (0: no limit; NULL: the setting applies)."""

    __tablename__ = "hume_tenant_budget"
    __table_args__ = (
        CheckConstraint("daily_seconds >= 0", name="ck_hume_tenant_budget_daily_seconds"),
        CheckConstraint("daily_input_tokens >= 0", name="ck_hume_tenant_budget_daily_input_tokens"),
    )

    tenant: Mapped[str] = mapped_column(Text, primary_key=True)
    daily_seconds: Mapped[int | None] = mapped_column(BigInteger)
    daily_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _now()


class EndedSession(Base):
    """A dashboard session signed out before its cookie expires (its id's SHA-256): the cookie is refused
    everywhere from then on. Rows older than the cookie's expiry are deleted at the next sign-out."""

    __tablename__ = "ended_session"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionToken(Base):
    """A short-lived, single-use token a browser opens a live session with (its SHA-256; see migration 0014
    and app/store/live_sessions.py), bound to the key that minted it and that key's tenant."""

    __tablename__ = "session_token"
    __table_args__ = (Index("ix_session_token_expires_at", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("api_key.id", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(Text)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID)
    """The id the session's job will have (one token opens one session): the minting backend knows it first."""
    token_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=text("'{}'::jsonb"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class LiveSession(Base):
    """The relay's record of a session job: the highest measurement (audio) or frame (video) id stored, so
    each is stored once, and the heartbeat by which the reconciler ends a session whose relay is gone."""

    __tablename__ = "live_session"
    __table_args__ = (
        CheckConstraint("medium IN ('audio', 'video')", name="ck_live_session_medium"),
        Index("ix_live_session_heartbeat_at", "heartbeat_at"),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    medium: Mapped[str] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(BigInteger)
    hume_session_id: Mapped[str | None] = mapped_column(Text)
    last_id: Mapped[int] = mapped_column(Integer, server_default="-1")
    heartbeat_at: Mapped[datetime] = _now()


class QuestionSet(Base):
    """One version of a tenant's Audio Decisions question set (see migration 0016 and
    app/store/question_sets.py). Versions of one set share `family_id`; a written version never changes
    except `archived_at`, so a job keeps the exact questions it was answered with."""

    __tablename__ = "question_set"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("json_typeof(questions) = 'array'", name="questions_array"),
        UniqueConstraint("family_id", "version"),
        Index("ix_question_set_tenant_created_at", "tenant", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID)
    version: Mapped[int] = mapped_column(Integer)
    tenant: Mapped[str] = mapped_column(Text, server_default="default")
    name: Mapped[str] = mapped_column(Text)
    context: Mapped[str | None] = mapped_column(Text)
    questions: Mapped[list[Any]] = mapped_column(JSON)
    """Ordered [{"id", "type", "instructions", "criteria"}]: Hume's answers depend on the order. json, not
    jsonb, which would reorder a choice question's options."""
    created_at: Mapped[datetime] = _now()
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DecisionJob(Base):
    """A job answered with a question set version (see migration 0016): written with the job's first answers,
    it holds the foreign keys `decision_answer` does without, and lists the jobs of a family."""

    __tablename__ = "decision_job"
    __table_args__ = (Index("ix_decision_job_family_id", "family_id"),)

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    question_set_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("question_set.id"), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID)
    tenant: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class DecisionWindow(Base):
    """A window of a job whose answers are stored (see migration 0016): claimed in the transaction that stores
    them, so a window's answers are stored once; what a resumed decision job skips."""

    __tablename__ = "decision_window"

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    source_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_index: Mapped[int] = mapped_column(Integer, primary_key=True)


class DecisionAnswer(Base):
    """Hume's answer to one question about one window of one source of a job (see migration 0016 and
    app/store/decisions.py): typed columns per primitive, and Hume's raw answer always. One index, (job,
    question), and no key: `decision_window` makes a window's answers stored once, `decision_job` holds the
    foreign keys. Hash-partitioned by question id (partitions in schema decision_part), so one question's
    answers are read from few pages."""

    __tablename__ = "decision_answer"
    __table_args__ = (
        CheckConstraint("primitive IN ('noul', 'choice', 'score', 'span')", name="primitive"),
        Index("ix_decision_answer_job_id_question_id", "job_id", "question_id"),
        {"postgresql_partition_by": "HASH (question_id)"},
    )
    # The mapper needs a key to track rows; the table has none (exactly once rides on decision_window).
    __mapper_args__ = {"primary_key": ["job_id", "question_id", "source_index", "window_index"]}  # noqa: RUF012

    job_id: Mapped[uuid.UUID] = mapped_column(UUID)
    source_index: Mapped[int] = mapped_column(Integer)
    source_url: Mapped[str | None] = mapped_column(Text)
    window_index: Mapped[int] = mapped_column(Integer)
    window_start_ms: Mapped[int] = mapped_column(Integer)
    window_end_ms: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(Text(collation="C"))
    primitive: Mapped[str] = mapped_column(Text)
    share: Mapped[float | None] = mapped_column(REAL)
    choice: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(REAL)
    option_probabilities: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    probabilities: Mapped[list[float | None] | None] = mapped_column(ARRAY(REAL))
    """option_probabilities in the order of the version's options (what distributions sum)."""
    score: Mapped[float | None] = mapped_column(REAL)
    level_probabilities: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    spans: Mapped[list[Any] | None] = mapped_column(JSONB)
    span_count: Mapped[int | None] = mapped_column(Integer)
    span_ms: Mapped[int | None] = mapped_column(BigInteger)
    """The spans' total duration (those with both ends); NULL when none has."""
    raw: Mapped[Any] = mapped_column(JSONB)
    run_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    question_set_id: Mapped[uuid.UUID] = mapped_column(UUID)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID)
    tenant: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
