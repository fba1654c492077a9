"""A tenant's own daily limit of Audio Decisions input tokens, beside its own limit of Hume-metered seconds.

`hume_tenant_budget` gets `daily_input_tokens` (NULL: HUME_TENANT_DAILY_DECISION_TOKENS applies; 0: no limit), and
`daily_seconds` becomes nullable, so a tenant may have either override without the other
(`python -m app tenant-budget TENANT --decision-tokens N`). Existing rows keep their seconds and get NULL tokens.

Downgrading drops the tokens' column and the rows that only held tokens (their seconds are NULL, which the
restored NOT NULL would refuse): those tenants are back on HUME_TENANT_DAILY_SECONDS, as they were.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("hume_tenant_budget", sa.Column("daily_input_tokens", sa.BigInteger(), nullable=True))
    # Named as the model names it (the metadata's convention makes it ck_<table>_<name>, as 0011's seconds check).
    op.create_check_constraint(
        "ck_hume_tenant_budget_daily_input_tokens", "hume_tenant_budget", "daily_input_tokens >= 0"
    )
    op.alter_column("hume_tenant_budget", "daily_seconds", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM hume_tenant_budget WHERE daily_seconds IS NULL")
    op.alter_column("hume_tenant_budget", "daily_seconds", existing_type=sa.BigInteger(), nullable=False)
    op.drop_column("hume_tenant_budget", "daily_input_tokens")
