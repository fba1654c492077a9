"""Migrations are the one way the schema changes: they must form one line, undo cleanly and match the models."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from app.config.sources import sqlalchemy_url
from app.store import prediction_partitions as partitions
from app.store.tables import Base
from tests.database import Databases, with_database

ROOT = Path(__file__).resolve().parents[2]


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


@pytest.fixture
def empty_database(databases: Databases) -> object:
    name = f"{databases.prefix}_empty"
    with psycopg.connect(databases.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(databases.admin_url, name)
    databases.drop(name)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_single_head() -> None:
    """Two engineers adding migrations in parallel must not leave two heads."""
    script = ScriptDirectory.from_config(_config("postgresql://unused/unused"))
    assert len(script.get_heads()) == 1


def test_migration_files_are_dated() -> None:
    """File names start with their date, so the directory lists in creation order."""
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        assert path.name[:4].isdigit() and path.name[4] == "-", path.name


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    """The schema installs, uninstalls completely (procrastinate's too), and installs again."""
    config = _config(empty_database)
    command.upgrade(config, "head")
    assert {"job", "inbox_event", "prediction", "procrastinate_jobs"} <= _tables(empty_database)
    command.downgrade(config, "base")
    assert _tables(empty_database) == {"alembic_version"}
    command.upgrade(config, "head")
    assert "prediction" in _tables(empty_database)


def test_models_match_migrated_schema(database_url: str) -> None:
    """Autogenerate finds nothing to do: app/store/tables.py and the migrations describe the same schema."""
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_object": lambda obj, name, type_, reflected, compare_to: (
                        not (type_ == "table" and name is not None and name.startswith("procrastinate"))
                    ),
                },
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_predictions_move_into_partitions_and_back(empty_database: str) -> None:
    """Migration 0018 moves stored predictions into their tenant's month (that of their job's creation),
    keeping ids and the sequence; undone, they are back in one table with its foreign keys."""
    config = _config(empty_database)
    command.upgrade(config, "0017")
    old, new = "8f0c2a1e-0000-4000-8000-000000000001", "8f0c2a1e-0000-4000-8000-000000000002"
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO job (id, tenant, created_at)"
            " VALUES (%s, 'acme', '2025-01-10T08:00:00Z'), (%s, 'Beta Ltd', now())",
            (old, new),
        )
        conn.execute("INSERT INTO source (job_id, position, kind) VALUES (%s, 0, 'url'), (%s, 0, 'url')", (old, new))
        conn.execute(
            "INSERT INTO prediction (job_id, source_id, model, time_begin, scores)"
            " SELECT s.job_id, s.id, 'prosody', k, ARRAY[k / 10.0, 0.5]::real[]"
            " FROM source s CROSS JOIN generate_series(1, CASE WHEN s.job_id = %s THEN 3 ELSE 2 END) k",
            (old,),
        )
        before = conn.execute("SELECT id, job_id::text, time_begin, scores FROM prediction ORDER BY id").fetchall()
    command.upgrade(config, "0018")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        after = conn.execute(
            "SELECT p.id, p.job_id::text, p.time_begin, p.scores, p.tableoid::regclass::text,"
            " p.stored_at = j.created_at FROM prediction p JOIN job j ON j.id = p.job_id ORDER BY p.id"
        ).fetchall()
        month = conn.execute("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')").fetchone()
        assert month is not None
        conn.execute(
            "INSERT INTO prediction (job_id, tenant, source_id, model, scores)"
            " SELECT job_id, 'Beta Ltd', source_id, model, scores FROM prediction WHERE job_id = %s LIMIT 1",
            (new,),
        )
        added = conn.execute("SELECT max(id) FROM prediction").fetchone()
    assert [row[:4] for row in after] == before
    where = {job: table for _, job, _, _, table, _ in after}
    assert where == {old: f"prediction_part.{partitions.month_table('acme', date(2025, 1, 1))}",
                     new: f"prediction_part.{partitions.tenant_table('Beta Ltd')}_{month[0]}"}  # fmt: skip
    assert all(row[5] for row in after)
    assert added is not None and added[0] == before[-1][0] + 1  # the sequence goes on
    command.downgrade(config, "0017")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        back = conn.execute("SELECT id, job_id::text, time_begin, scores FROM prediction ORDER BY id").fetchall()
        keys = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'prediction'::regclass AND contype = 'f' ORDER BY 1"
        ).fetchall()
        schema = conn.execute("SELECT to_regnamespace('prediction_part')").fetchone()
    assert back[: len(before)] == before and len(back) == len(before) + 1
    assert keys == [("fk_prediction_job_id_job",), ("fk_prediction_source_id_source",)]
    assert schema == (None,)
    command.upgrade(config, "head")


def _queue_plans(url: str) -> tuple[object, object]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT proconfig FROM pg_proc WHERE oid = 'procrastinate_fetch_job_v2(varchar[], bigint)'"
            "::regprocedure), to_regclass('ix_webhook_message_pending_endpoint_id_created_at')::text"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_queue_plans_undo_and_redo(empty_database: str) -> None:
    """Migration 0019 sets procrastinate's fetch to plan without sorts and adds the claim's partial index;
    undone, the function is as procrastinate made it and the index is gone; redone, both are back."""
    config = _config(empty_database)
    command.upgrade(config, "0019")
    assert _queue_plans(empty_database) == (["enable_sort=off"], "ix_webhook_message_pending_endpoint_id_created_at")
    command.downgrade(config, "0018")
    assert _queue_plans(empty_database) == (None, None)
    command.upgrade(config, "0019")
    assert _queue_plans(empty_database) == (["enable_sort=off"], "ix_webhook_message_pending_endpoint_id_created_at")
