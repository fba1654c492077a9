"""Queue statements whose plans must hold under a backlog (migration 0019): procrastinate's fetch when its
table was analyzed empty, and the claim of an endpoint's due webhooks in a table of delivered ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from procrastinate.sql import queries

from app.store import webhook_delivery_rows

WAITING = 6_000
"""Tasks waiting when the fetch runs: the backlog bench_ack stalled on (11 s a fetch, loaded machine)."""

# As the service defers them: events without a lock, job starts locked to their job (and one waiting per job),
# deliveries one waiting per endpoint; a tenth on another queue.
_DEFER = """
SELECT procrastinate_defer_jobs_v1(array_agg(ROW(
    CASE WHEN i %% 10 = 9 THEN 'other' ELSE 'default' END,
    CASE i %% 3 WHEN 0 THEN 'start_job' WHEN 1 THEN 'deliver_message' ELSE 'process_event' END,
    0,
    CASE WHEN i %% 3 = 0 THEN 'job:' || i END,
    CASE i %% 3 WHEN 0 THEN 'start:' || i WHEN 1 THEN 'webhook-endpoint:' || i END,
    '{}'::jsonb, NULL
)::procrastinate_job_to_defer_v1))
FROM generate_series(1, %(n)s) i
"""

# Rows and index entries of procrastinate_jobs this transaction has read so far.
_READ = """
SELECT (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) FROM pg_index
        WHERE indrelid = 'procrastinate_jobs'::regclass)
     + pg_stat_get_xact_tuples_returned('procrastinate_jobs'::regclass)
     + pg_stat_get_xact_tuples_fetched('procrastinate_jobs'::regclass)
"""


def test_fetch_reads_a_few_tasks_of_a_backlog_the_planner_thought_empty(database_url: str) -> None:
    """Analyzed while empty (right after a drain), the queue's statistics say nothing waits; with 6,000
    waiting, procrastinate's own fetch still reads only the tasks ahead of the one it takes, not every
    waiting task against every other (20,959 rows and index entries without migration 0019: 0.2 s a fetch
    on an idle machine, seconds under load). Fetched as procrastinate's worker does, through its query."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Nothing analyzes the table behind the test's back: the plan must come from the empty statistics.
        conn.execute("ALTER TABLE procrastinate_jobs SET (autovacuum_enabled = false)")
        conn.execute("VACUUM ANALYZE procrastinate_jobs")
        conn.execute(_DEFER, {"n": WAITING})
        worker = _one(conn, "SELECT worker_id FROM procrastinate_register_worker_v1()")
    with psycopg.connect(database_url) as conn:
        for queues in (None, ["default"]):
            before = _one(conn, _READ)
            fetched = conn.execute(queries["fetch_job"], {"queues": queues, "worker_id": worker}).fetchone()
            read = _one(conn, _READ) - before
            assert fetched is not None
            assert read < 100, f"fetch (queues {queues}) read {read} rows and index entries with {WAITING} waiting"
            conn.rollback()
        oldest = [row[0] for row in conn.execute("SELECT id FROM procrastinate_jobs ORDER BY id LIMIT 3")]
        taken = [_fetch(conn, worker) for _ in range(3)]
        conn.commit()
    assert taken == oldest  # still the oldest first (all at priority 0, none held by its lock)


def test_claim_reads_only_the_endpoints_pending_messages(database_url: str) -> None:
    """An endpoint with 40,000 delivered messages and 200 due, beside another with 2,000 pending retries not
    yet due: the claim walks the first endpoint's pending messages in created_at order (the partial index
    of migration 0019), neither its delivered log nor the other endpoint's retries; and an endpoint with
    nothing due reads nothing."""
    busy, failing, quiet = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        key = uuid.uuid4()
        conn.execute("INSERT INTO api_key (id, name, key_hash, scopes) VALUES (%s, 'plans', %s, '{}')", (key, str(key)))
        conn.execute(
            "INSERT INTO webhook_endpoint (id, api_key_id, url, events, secret)"
            " SELECT e, %s, 'https://receiver.example/hook', '{}', 'secret' FROM unnest(%s::uuid[]) e",
            (key, [busy, failing, quiet]),
        )
        for endpoint, count, state, due, created in (
            (busy, 40_000, "delivered", None, "now() - interval '30 days' + i * interval '1 minute'"),
            (quiet, 10_000, "delivered", None, "now() - interval '7 days' + i * interval '1 minute'"),
            (failing, 2_000, "pending", "now() + interval '1 hour'", "now() - interval '2 hours' + i * interval '1 s'"),
            (busy, 200, "pending", "now() - interval '1 s'", "now() - interval '1 minute' + i * interval '10 ms'"),
        ):
            conn.execute(
                "INSERT INTO webhook_message (endpoint_id, event_type, payload, msg_id, state, next_attempt_at,"
                f" created_at) SELECT %s, 'job.completed', '{{}}', gen_random_uuid()::text, %s, {due or 'NULL'},"
                f" {created} FROM generate_series(1, %s) i",
                (endpoint, state, count),
            )
        # Statistics from every row, not a 30,000-row sample of the 52,200: sampled, the endpoints' shares
        # among pending rows came out differently run to run, and with them the planner's choice (1 run in
        # ~10 took the (state, created_at) index, which reads the other endpoint's 2,000 retries first).
        conn.execute("ALTER TABLE webhook_message ALTER COLUMN endpoint_id SET STATISTICS 1000")
        conn.execute("ALTER TABLE webhook_message ALTER COLUMN state SET STATISTICS 1000")
        conn.execute("VACUUM ANALYZE webhook_message")
        for endpoint, pending in ((busy, 200), (quiet, 0)):
            nodes = list(_nodes(_claim_plan(conn, endpoint)))
            indexes = {node["Index Name"]: node for node in nodes if "Index Name" in node}
            claimed = indexes.get("ix_webhook_message_pending_endpoint_id_created_at")
            assert claimed is not None, f"the claim used {sorted(indexes)}"
            assert {"ix_webhook_message_state_created_at", "ix_webhook_message_endpoint_id_id"}.isdisjoint(indexes)
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] == "webhook_message"]
            assert claimed["Actual Rows"] <= pending


def _claim_plan(conn: psycopg.Connection[Any], endpoint: uuid.UUID) -> dict[str, Any]:
    """The claim's plan as it ran (a transaction rolled back: nothing stays claimed)."""
    params = {"endpoint": endpoint, "limit": 32, "lease": 13.0, "id": []}
    with conn.transaction(force_rollback=True):
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + webhook_delivery_rows._CLAIM, params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return dict(plan[0]["Plan"])


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _fetch(conn: psycopg.Connection[Any], worker: int) -> int:
    row = conn.execute(queries["fetch_job"], {"queues": None, "worker_id": worker}).fetchone()
    assert row is not None
    return int(row[0])


def _one(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])
