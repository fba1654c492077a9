"""Each job names the backend that runs it: `batch` (Hume's batch API or a compatible server) or `v1`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("backend", sa.Text(), server_default="batch", nullable=False))


def downgrade() -> None:
    op.drop_column("job", "backend")
