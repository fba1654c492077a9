"""Migrations are the one way the schema changes: they must form one line, undo cleanly and match the models."""

from __future__ import annotations

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
