"""Processed inbox events' bodies are pruned after INBOX_BODY_RETENTION_H: the row (and its dedup key) stays,
with when its body went.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("inbox_event", sa.Column("body_pruned_at", sa.DateTime(timezone=True), nullable=True))
    # What the hourly pruning looks for. Events are inserted `received`, outside the predicate, so the
    # acknowledgement path never writes this index.
    op.create_index(
        "ix_inbox_event_prunable",
        "inbox_event",
        ["processed_at"],
        postgresql_where=sa.text("state IN ('done', 'ignored') AND body_pruned_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_event_prunable", table_name="inbox_event")
    op.drop_column("inbox_event", "body_pruned_at")
