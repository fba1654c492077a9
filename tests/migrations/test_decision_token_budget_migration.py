"""Migration 0020 (Audio Decisions input tokens beside Hume-metered seconds) installs, uninstalls and installs again
over stored usage: days already kept start at 0 tokens; undone, the decisions rows and the tokens' columns go and
the seconds stay as they were."""

from __future__ import annotations

import psycopg
from alembic import command

from tests.migrations.test_migrations import _config, empty_database  # noqa: F401 (a fixture)

JOB = "8f0c2a1e-0000-4000-8000-000000000020"


def _columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
    return {r[0] for r in found}


def test_decision_tokens_up_down_up(empty_database: str) -> None:  # noqa: F811
    config = _config(empty_database)
    command.upgrade(config, "0019")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("INSERT INTO job (id, tenant) VALUES (%s, 'acme')", (JOB,))
        conn.execute(
            "INSERT INTO hume_usage (job_id, tenant, day, source_index, medium, chunk, seconds)"
            " VALUES (%s, 'acme', '2026-12-04', 0, 'audio', 0, 10.0)",
            (JOB,),
        )
        conn.execute(
            "INSERT INTO hume_tenant_day (tenant, day, seconds, limit_seconds) VALUES ('acme', '2026-12-04', 10, 100)"
        )
    command.upgrade(config, "0020")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        day = conn.execute("SELECT seconds, limit_seconds, input_tokens, limit_input_tokens FROM hume_tenant_day")
        assert day.fetchall() == [(10.0, 100, 0, 0)]
        # A day first charged with tokens is one insert (the seconds default to 0), and a window is a usage row.
        conn.execute(
            "INSERT INTO hume_tenant_day (tenant, day, input_tokens, limit_input_tokens)"
            " VALUES ('acme', '2026-12-05', 800, 2000)"
        )
        conn.execute(
            "INSERT INTO hume_usage (job_id, tenant, day, source_index, medium, chunk, input_tokens)"
            " VALUES (%s, 'acme', '2026-12-05', 0, 'decisions', 0, 800)",
            (JOB,),
        )
        new_day = conn.execute("SELECT seconds, limit_seconds FROM hume_tenant_day WHERE day = '2026-12-05'")
        assert new_day.fetchall() == [(0.0, 0)]
    command.downgrade(config, "0019")
    assert "input_tokens" not in _columns(empty_database, "hume_usage")
    assert {"input_tokens", "limit_input_tokens"}.isdisjoint(_columns(empty_database, "hume_tenant_day"))
    with psycopg.connect(empty_database, autocommit=True) as conn:
        usage = conn.execute("SELECT medium, seconds FROM hume_usage").fetchall()
        assert usage == [("audio", 10.0)]
    command.upgrade(config, "0020")
    assert "input_tokens" in _columns(empty_database, "hume_usage")
    command.upgrade(config, "head")
