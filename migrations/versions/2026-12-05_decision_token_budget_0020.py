"""Audio Decisions input tokens counted and budgeted per tenant and UTC day, beside Hume-metered seconds.

Hume bills Audio Decisions per input token (D/billing, AUDIO-DECISIONS-FACTS §5), not per second, so a decision
job's windows get a budget of their own (HUME_TENANT_DAILY_DECISION_TOKENS) kept by the same rule and statement
as the seconds budget (app/store/hume_usage.py):

- `hume_usage` rows of medium `decisions`, one per window sent, holding `input_tokens` (the estimate reserved
  before sending, then the figure Hume's answer reports); their `seconds` are 0, the default now;
- `hume_tenant_day.input_tokens` and `limit_input_tokens`, the day's total and the limit in force, both 0 for
  the days already kept; `seconds` and `limit_seconds` default to 0, so a day first charged with tokens is one
  insert.

Downgrading deletes the decisions rows (the medium check would refuse them) and the tokens' columns.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 07:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The name migration 0011 gave it: its own name under the metadata's naming convention (ck_<table>_<name>).
MEDIUM_CHECK = "ck_hume_usage_ck_hume_usage_medium"


def upgrade() -> None:
    op.add_column("hume_usage", sa.Column("input_tokens", sa.BigInteger(), nullable=True))
    op.alter_column("hume_usage", "seconds", server_default="0")
    op.drop_constraint(op.f(MEDIUM_CHECK), "hume_usage", type_="check")
    op.create_check_constraint(op.f(MEDIUM_CHECK), "hume_usage", "medium IN ('audio', 'video', 'decisions')")
    op.add_column("hume_tenant_day", sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column(
        "hume_tenant_day", sa.Column("limit_input_tokens", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.alter_column("hume_tenant_day", "seconds", server_default="0")
    op.alter_column("hume_tenant_day", "limit_seconds", server_default="0")


def downgrade() -> None:
    op.alter_column("hume_tenant_day", "limit_seconds", server_default=None)
    op.alter_column("hume_tenant_day", "seconds", server_default=None)
    op.drop_column("hume_tenant_day", "limit_input_tokens")
    op.drop_column("hume_tenant_day", "input_tokens")
    op.execute("DELETE FROM hume_usage WHERE medium = 'decisions'")
    op.drop_constraint(op.f(MEDIUM_CHECK), "hume_usage", type_="check")
    op.create_check_constraint(op.f(MEDIUM_CHECK), "hume_usage", "medium IN ('audio', 'video')")
    op.alter_column("hume_usage", "seconds", server_default=None)
    op.drop_column("hume_usage", "input_tokens")
