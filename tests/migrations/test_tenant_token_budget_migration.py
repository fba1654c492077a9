"""Migration 0021 (a tenant's own limit of decision tokens beside its own seconds) installs, uninstalls and installs
again over stored overrides: a seconds override keeps its seconds and gets no tokens' one; undone, the rows that
held only tokens go (those tenants are back on the settings) and the seconds' overrides stay."""

from __future__ import annotations

import psycopg
import pytest
from alembic import command

from tests.migrations.test_decision_token_budget_migration import _columns
from tests.migrations.test_migrations import _config, empty_database  # noqa: F401 (a fixture)


def test_tenant_token_budget_up_down_up(empty_database: str) -> None:  # noqa: F811
    config = _config(empty_database)
    command.upgrade(config, "0020")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("INSERT INTO hume_tenant_budget (tenant, daily_seconds) VALUES ('acme', 100)")
    command.upgrade(config, "0021")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        kept = conn.execute("SELECT tenant, daily_seconds, daily_input_tokens FROM hume_tenant_budget")
        assert kept.fetchall() == [("acme", 100, None)]
        # Either override without the other.
        conn.execute("INSERT INTO hume_tenant_budget (tenant, daily_input_tokens) VALUES ('tokens-only', 5000)")
        conn.execute("UPDATE hume_tenant_budget SET daily_input_tokens = 0 WHERE tenant = 'acme'")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO hume_tenant_budget (tenant, daily_input_tokens) VALUES ('bad', -1)")
    command.downgrade(config, "0020")
    assert "daily_input_tokens" not in _columns(empty_database, "hume_tenant_budget")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert conn.execute("SELECT tenant, daily_seconds FROM hume_tenant_budget").fetchall() == [("acme", 100)]
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO hume_tenant_budget (tenant) VALUES ('none')")
    command.upgrade(config, "0021")
    assert "daily_input_tokens" in _columns(empty_database, "hume_tenant_budget")
    command.upgrade(config, "head")
