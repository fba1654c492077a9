"""What Hume billed: each v1 request's `metered_seconds` as Hume's runs API reports it, beside our estimate,
and when the unowned-runs check last ran.

`hume_usage.seconds` stays the estimate made before sending; `billed_seconds` is Hume's figure once read.
`billing` says which one counts: `pending` (a run to read, at `billing_due_at`), `hume` (Hume's figure
read), `estimate` (no run to read, or Hume never listed it after the reader's tries: the estimate stands).
Rows from before this revision keep their estimate.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 02:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("hume_usage", sa.Column("billed_seconds", sa.Float(), nullable=True))
    op.add_column("hume_usage", sa.Column("billing", sa.Text(), server_default="estimate", nullable=False))
    op.add_column("hume_usage", sa.Column("billing_tries", sa.Integer(), server_default="0", nullable=False))
    op.add_column("hume_usage", sa.Column("billing_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_hume_usage_billing"), "hume_usage", "billing IN ('pending', 'hume', 'estimate')"
    )
    op.create_index(
        "ix_hume_usage_billing_due", "hume_usage", ["billing_due_at"], postgresql_where=sa.text("billing = 'pending'")
    )
    op.create_index("ix_hume_usage_run_id", "hume_usage", ["run_id"])
    op.create_index("ix_hume_usage_day_tenant", "hume_usage", ["day", "tenant"])
    op.create_table(
        "hume_run_check",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_hume_run_check"),
    )


def downgrade() -> None:
    op.drop_table("hume_run_check")
    op.drop_index("ix_hume_usage_day_tenant", table_name="hume_usage")
    op.drop_index("ix_hume_usage_run_id", table_name="hume_usage")
    op.drop_index("ix_hume_usage_billing_due", table_name="hume_usage")
    op.drop_constraint(op.f("ck_hume_usage_billing"), "hume_usage", type_="check")
    for column in ("billing_due_at", "billing_tries", "billing", "billed_seconds"):
        op.drop_column("hume_usage", column)
