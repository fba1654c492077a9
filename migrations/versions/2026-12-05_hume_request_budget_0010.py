"""Hume allows each organization 600 requests a minute (HUME-V1-FACTS §4): one row per budget holds the
theoretical arrival time of the next request (GCRA), so every process of the service paces itself against
the same clock.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_budget",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_request_budget"),
    )


def downgrade() -> None:
    op.drop_table("request_budget")
