"""TTS cache: results of POST /v1/tts by request hash, size-bounded with LRU eviction.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tts_cache",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("generation_id", sa.Text(), nullable=True),
        sa.Column("hits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tts_cache")),
    )
    op.create_index("ix_tts_cache_last_used_at", "tts_cache", ["last_used_at"], unique=False)
    # Audio is already compressed (or noise-like PCM): skip TOAST's compression attempt on write and read.
    op.execute("ALTER TABLE tts_cache ALTER COLUMN content SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_index("ix_tts_cache_last_used_at", table_name="tts_cache")
    op.drop_table("tts_cache")
