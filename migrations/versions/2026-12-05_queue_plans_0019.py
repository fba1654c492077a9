"""Plans that hold under a backlog: procrastinate's fetch, and the claim of an endpoint's due webhooks.

procrastinate's fetch (procrastinate_fetch_job_v2) runs without sorts. With `procrastinate_jobs` analyzed
while empty (after a drain) and thousands of tasks then waiting, the planner trusted "one waiting task":
it read every waiting task, tested each against every other (a nested loop over the whole backlog) and
sorted them to keep the first: 0.17-0.28 s a fetch with 6,000 waiting on an idle 2-core machine (20,959
rows and index entries read; 2.0 s with 20,000; 11 s in bench_ack's loaded run), so the worker stalled
behind its own queue. Without a sort the one plan left walks procrastinate_jobs_priority_idx_v1 in the
fetch's own order and stops at the first task it may take: 1-3 ms and 9 rows read, whatever the
statistics say (procrastinate issue #393 is this query's cost). The setting lives on the function only,
so nothing else's plans change; a procrastinate upgrade that replaces the function drops it, and
tests/integration/test_queue_plans.py then fails.

An index for the outbound claim (app/store/webhook_delivery_rows.py): an endpoint's pending messages in
created_at order, and nothing else. The claim walked ix_webhook_message_state_created_at's pending rows of
every endpoint (another's 5,000 retries read and dropped for 500 due), or, for an endpoint with none due,
all of its messages through ix_webhook_message_endpoint_id_id (20,000 delivered: 1.5 ms for nothing; 0.07
ms now). It holds pending rows only, so it stays as small as the backlog; next_attempt_at stays out of it,
so a claim's lease (an UPDATE of next_attempt_at only) can still be a HOT update.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FETCH = "procrastinate_fetch_job_v2(character varying[], bigint)"


def upgrade() -> None:
    op.execute(f"ALTER FUNCTION {FETCH} SET enable_sort = off")
    op.create_index(
        "ix_webhook_message_pending_endpoint_id_created_at",
        "webhook_message",
        ["endpoint_id", "created_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_message_pending_endpoint_id_created_at", table_name="webhook_message")
    op.execute(f"ALTER FUNCTION {FETCH} RESET enable_sort")
