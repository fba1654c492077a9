"""Queued event tasks under the name an earlier release used (`process_evi_event`) are renamed to the one
event runner's name (`process_event`), so the worker no longer registers the old name. Both take the same
single argument, `event_id` (the old name was registered to the same function), so only the name changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE procrastinate_jobs SET task_name = 'process_event' WHERE task_name = 'process_evi_event'")


def downgrade() -> None:
    # Nothing to undo: the earlier release registers `process_event` too.
    pass
