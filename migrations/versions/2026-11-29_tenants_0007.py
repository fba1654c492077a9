"""Tenants: every API key and every job belongs to one; reads are scoped to the caller's tenant. Existing
keys and jobs join the `default` tenant, so single-tenant use keeps working unchanged.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_key", sa.Column("tenant", sa.Text(), server_default="default", nullable=False))
    op.add_column("job", sa.Column("tenant", sa.Text(), server_default="default", nullable=False))
    # A tenant's newest jobs first: the list's order, scoped.
    op.create_index("ix_job_tenant_created_at", "job", ["tenant", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_job_tenant_created_at", table_name="job")
    op.drop_column("job", "tenant")
    op.drop_column("api_key", "tenant")
