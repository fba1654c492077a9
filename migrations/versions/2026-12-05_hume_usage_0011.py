"""What Hume bills us (metered seconds), per request, job and tenant, and each tenant's daily budget of it.

`hume_usage` has one row per v1 request sent (its cost known before sending), `hume_tenant_day` the running
total of a tenant's UTC day, which a request's reservation raises in one statement only while it stays within
the tenant's limit (so two workers cannot both take the last seconds), and `hume_tenant_budget` the operators'
per-tenant overrides of HUME_TENANT_DAILY_SECONDS.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hume_usage",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("job_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("job.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.Column("medium", sa.Text(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        # sent: reserved and sent, no answer (yet, or ever: then it may have been billed, so it counts);
        # billed: Hume answered with a result. A request Hume answered with an error is deleted (billed 0).
        sa.Column("state", sa.Text(), server_default="sent", nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hume_usage"),
        sa.CheckConstraint("medium IN ('audio', 'video')", name="ck_hume_usage_medium"),
        sa.CheckConstraint("state IN ('sent', 'billed')", name="ck_hume_usage_state"),
    )
    op.create_index("ix_hume_usage_job_id", "hume_usage", ["job_id"])
    op.create_table(
        "hume_tenant_day",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("limit_seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "day", name="pk_hume_tenant_day"),
    )
    op.create_table(
        "hume_tenant_budget",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("daily_seconds", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_hume_tenant_budget"),
        sa.CheckConstraint("daily_seconds >= 0", name="ck_hume_tenant_budget_daily_seconds"),
    )


def downgrade() -> None:
    op.drop_table("hume_tenant_budget")
    op.drop_table("hume_tenant_day")
    op.drop_index("ix_hume_usage_job_id", table_name="hume_usage")
    op.drop_table("hume_usage")
