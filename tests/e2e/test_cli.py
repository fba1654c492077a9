"""The command line, run as users run it: `python -m app ...` in a subprocess against a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from app.store import api_keys
from app.store.db import make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_create_key_prints_a_working_key_once(database_url: str) -> None:
    """create-key prints the key alone on its last line; only its hash is stored, with the scopes asked for."""
    result = run_cli("create-key", "--name", "ci", "--scopes", "submit,read", database_url=database_url)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("hes_") and " " not in key

    async def lookup() -> api_keys.Principal | None:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                return await api_keys.find(session, key)
        finally:
            await engine.dispose()

    principal = asyncio.run(lookup())
    assert principal is not None and principal.scopes == {"submit", "read"}


def test_create_key_rejects_unknown_scopes(database_url: str) -> None:
    """A typo in a scope is an error, not a silently powerless key."""
    result = run_cli("create-key", "--name", "ci", "--scopes", "submit,reed", database_url=database_url)
    assert result.returncode == 2
    assert "reed" in result.stderr


# Every column, index and constraint of the public schema, and the migration head: what `migrate` could change.
SCHEMA_SQL = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' '
       || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'revision', version_num FROM alembic_version
ORDER BY 1, 2
"""


def schema(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return [(kind, what) for kind, what in conn.execute(SCHEMA_SQL).fetchall()]


def test_migrate_on_an_up_to_date_database_changes_nothing(database_url: str) -> None:
    """Running migrate again succeeds and leaves every column, index, constraint and the revision as they were."""
    before = schema(database_url)
    assert any(kind == "index" for kind, _ in before) and any(kind == "revision" for kind, _ in before)
    result = run_cli("migrate", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert schema(database_url) == before


def test_emulator_command_takes_its_port() -> None:
    """`python -m app emulator --port N` serves Hume's paths on N until interrupted."""
    import signal
    import time

    import httpx

    from tests.servers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "emulator", "--port", str(port), "--cloud-port", str(free_port())],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v0/batch/jobs", headers={"X-Hume-Api-Key": "k"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == []
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
