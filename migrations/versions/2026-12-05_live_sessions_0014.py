"""Live sessions: a browser's realtime session relayed to Hume is a job of kind `session`, `live` while the
relay holds it (then completed or failed through the outbox like any job). `session_token` holds the
short-lived tokens browsers open the relay with (SHA-256 of the token, single use, naming the job its session
will be); `live_session` holds
what the relay needs to store each measurement exactly once (the highest measurement/frame id stored) and
its heartbeat, by which the reconciler ends a session whose relay is gone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES_BEFORE = "('pending', 'queued', 'in_progress', 'completed', 'failed', 'rejected')"
_STATUSES = "('pending', 'queued', 'in_progress', 'live', 'completed', 'failed', 'rejected')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_job_kind"), "job", type_="check")
    op.create_check_constraint(op.f("ck_job_kind"), "job", "kind IN ('batch', 'evi_chat', 'session')")
    op.drop_constraint(op.f("ck_job_status"), "job", type_="check")
    op.create_check_constraint(op.f("ck_job_status"), "job", f"status IN {_STATUSES}")
    op.create_table(
        "session_token",
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_key.id"], name="fk_session_token_api_key_id_api_key",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_session_token"),
    )  # fmt: skip
    op.create_index("ix_session_token_expires_at", "session_token", ["expires_at"], unique=False)
    op.create_table(
        "live_session",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("medium", sa.Text(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("hume_session_id", sa.Text(), nullable=True),
        sa.Column("last_id", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("medium IN ('audio', 'video')", name="ck_live_session_medium"),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name="fk_live_session_job_id_job", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", name="pk_live_session"),
    )
    op.create_index("ix_live_session_heartbeat_at", "live_session", ["heartbeat_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_live_session_heartbeat_at", table_name="live_session")
    op.drop_table("live_session")
    op.drop_index("ix_session_token_expires_at", table_name="session_token")
    op.drop_table("session_token")
    op.execute("DELETE FROM job WHERE kind = 'session'")
    op.drop_constraint(op.f("ck_job_status"), "job", type_="check")
    op.create_check_constraint(op.f("ck_job_status"), "job", f"status IN {_STATUSES_BEFORE}")
    op.drop_constraint(op.f("ck_job_kind"), "job", type_="check")
    op.create_check_constraint(op.f("ck_job_kind"), "job", "kind IN ('batch', 'evi_chat')")
