"""Create the service schema: jobs, inbox, predictions store, API keys, and procrastinate's queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 13:59:16.405746
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql

from app.hume.emotions import CANONICAL

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_table(
        "emotion",
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model", "position", name=op.f("pk_emotion")),
        sa.UniqueConstraint("model", "name", name=op.f("uq_emotion_model_name")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Text(), server_default="batch", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("hume_job_id", sa.Text(), nullable=True),
        sa.Column("callback_token_hash", sa.Text(), nullable=True),
        sa.Column(
            "request",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("api_key_id", sa.UUID(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_fingerprint", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("num_predictions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("num_errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("submit_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('batch', 'evi_chat')", name=op.f("ck_job_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'in_progress', 'completed', 'failed', 'rejected')",
            name=op.f("ck_job_status"),
        ),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_key.id"], name=op.f("fk_job_api_key_id_api_key")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("api_key_id", "idempotency_key", name=op.f("uq_job_api_key_id_idempotency_key")),
        sa.UniqueConstraint("kind", "hume_job_id", name=op.f("uq_job_kind_hume_job_id")),
    )
    op.create_index("ix_job_created_at", "job", ["created_at"], unique=False)
    op.create_index("ix_job_status_deadline", "job", ["status", "deadline_at"], unique=False)
    op.create_table(
        "inbox_event",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.Text(), server_default="received", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('received', 'processing', 'done', 'dead', 'ignored')",
            name=op.f("ck_inbox_event_state"),
        ),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_inbox_event_job_id_job"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_event")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_inbox_event_dedup_key")),
    )
    op.create_index("ix_inbox_event_job_id", "inbox_event", ["job_id"], unique=False)
    op.create_index("ix_inbox_event_state", "inbox_event", ["state"], unique=False)
    op.create_table(
        "source",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("md5sum", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "file_errors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "files",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_source_job_id_job"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source")),
        sa.UniqueConstraint("job_id", "position", name=op.f("uq_source_job_id_position")),
    )
    op.create_table(
        "emotion_stat",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_emotion_stat_job_id_job"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_emotion_stat_source_id_source"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "source_id", "model", "position", name=op.f("pk_emotion_stat")),
    )
    op.create_index("ix_emotion_stat_model_name_mean", "emotion_stat", ["model", "name", "mean"], unique=False)
    op.create_table(
        "model_stat",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_model_stat_job_id_job"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_model_stat_source_id_source"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "source_id", "model", name=op.f("pk_model_stat")),
    )
    op.create_table(
        "prediction",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("group_id", sa.Text(), nullable=True),
        sa.Column("frame", sa.Integer(), nullable=True),
        sa.Column("time_begin", sa.Float(), nullable=True),
        sa.Column("time_end", sa.Float(), nullable=True),
        sa.Column("prob", sa.Float(), nullable=True),
        sa.Column("box", postgresql.ARRAY(sa.REAL()), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("position_begin", sa.Integer(), nullable=True),
        sa.Column("position_end", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("speaker_confidence", sa.Float(), nullable=True),
        sa.Column("scores", postgresql.ARRAY(sa.REAL()), nullable=False),
        sa.Column("extras", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_prediction_job_id_job"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_prediction_source_id_source"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction")),
    )
    op.create_index("ix_prediction_job_id_id", "prediction", ["job_id", "id"], unique=False)
    op.bulk_insert(
        sa.table(
            "emotion",
            sa.column("model", sa.Text),
            sa.column("position", sa.SmallInteger),
            sa.column("name", sa.Text),
        ),
        [{"model": m, "position": i, "name": n} for m, names in CANONICAL.items() for i, n in enumerate(names)],
    )
    op.execute(PREDICTION_SCORE_VIEW)
    # The queue's schema, as the installed procrastinate ships it; later procrastinate upgrades add
    # their own migration files here, so `migrate` stays the one way the schema changes.
    op.execute(SchemaManager.get_schema())


# Long form for BI tools and plain SQL: one row per (prediction, emotion it scored).
PREDICTION_SCORE_VIEW = """
CREATE VIEW prediction_score AS
SELECT p.job_id, p.source_id, s.url AS source_url, p.file, p.model, p.group_id, p.frame,
       p.time_begin, p.time_end, p.text, e.name AS emotion, u.score
FROM prediction p
JOIN source s ON s.id = p.source_id
CROSS JOIN LATERAL unnest(p.scores) WITH ORDINALITY AS u(score, ord)
JOIN emotion e ON e.model = p.model AND e.position = u.ord - 1
WHERE u.score IS NOT NULL
"""

DROP_PROCRASTINATE = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
           AND tablename LIKE 'procrastinate%' LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%' LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.sig);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%' AND t.typtype IN ('e', 'c') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
  END LOOP;
END $$;
"""


def downgrade() -> None:
    op.execute("DROP VIEW prediction_score")
    op.execute(DROP_PROCRASTINATE)
    op.drop_index("ix_prediction_job_id_id", table_name="prediction")
    op.drop_table("prediction")
    op.drop_index("ix_emotion_stat_model_name_mean", table_name="emotion_stat")
    op.drop_table("model_stat")
    op.drop_table("emotion_stat")
    op.drop_table("source")
    op.drop_index("ix_inbox_event_state", table_name="inbox_event")
    op.drop_index("ix_inbox_event_job_id", table_name="inbox_event")
    op.drop_table("inbox_event")
    op.drop_index("ix_job_status_deadline", table_name="job")
    op.drop_index("ix_job_created_at", table_name="job")
    op.drop_table("job")
    op.drop_table("emotion")
    op.drop_table("api_key")
