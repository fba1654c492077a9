"""Dashboard sign-out ends the session everywhere: the signed-out sessions (their ids' SHA-256) until their
cookies would have expired, checked on every page in the query that already reads the session's API key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_session",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ended_session"),
    )


def downgrade() -> None:
    op.drop_table("ended_session")
