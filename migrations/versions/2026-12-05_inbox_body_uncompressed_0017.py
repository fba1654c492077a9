"""Inbox bodies stored uncompressed (STORAGE EXTERNAL): the worker reads a large body in slices, and a slice
of a compressed value is decompressed from the value's start each time, so an 86 MB callback (32 MB under
pglz) took 1.4-3.1 s to read in slices against 0.66 s uncompressed (same machine, loaded). Compression also
sat on the acknowledgement's path. Bodies under 2 kB (nearly every webhook) were never compressed; the large
ones are emptied after INBOX_BODY_RETENTION_H. Existing rows keep their storage until rewritten.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE inbox_event ALTER COLUMN body SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE inbox_event ALTER COLUMN body SET STORAGE EXTENDED")
