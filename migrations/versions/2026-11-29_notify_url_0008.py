"""A job's `notify_url`: a one-off webhook endpoint that hears only the end of the job it was given with.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_endpoint", sa.Column("job_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_webhook_endpoint_job_id_job"), "webhook_endpoint", "job", ["job_id"], ["id"], ondelete="CASCADE"
    )
    # Finding a job's one-off endpoint when it ends; most endpoints have none, so the index holds few rows.
    op.create_index(
        "ix_webhook_endpoint_job_id", "webhook_endpoint", ["job_id"], postgresql_where=sa.text("job_id IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_endpoint_job_id", table_name="webhook_endpoint")
    op.drop_constraint(op.f("fk_webhook_endpoint_job_id_job"), "webhook_endpoint", type_="foreignkey")
    op.drop_column("webhook_endpoint", "job_id")
