"""Progress of v1 jobs: one row per measured chunk (a WAV piece or a batch of frames) of a source's medium,
and one per finished (source, medium) outcome. The unique key makes a resumed job skip stored chunks and
a racing duplicate insert a no-op.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "v1_chunk",
        sa.Column("job_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("job.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.Column("medium", sa.Text(), nullable=False),
        # -1 is the outcome row of (source, medium): written once every chunk is stored, or with its error.
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("face_state", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        # Video: [[source frame number, timestamp ms], ...] of the images sent, in order (Hume only numbers them).
        sa.Column("frames", postgresql.JSONB(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "source_index", "medium", "chunk", name="pk_v1_chunk"),
        sa.CheckConstraint("medium IN ('audio', 'video')", name="ck_v1_chunk_medium"),
    )


def downgrade() -> None:
    op.drop_table("v1_chunk")
