"""The command line, run as users run it: `python -m app ...` in a subprocess against a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

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


def test_migrate_is_idempotent(database_url: str) -> None:
    """Running migrate on an up-to-date database changes nothing and succeeds."""
    result = run_cli("migrate", database_url=database_url)
    assert result.returncode == 0, result.stderr


def test_emulator_command_takes_its_port() -> None:
    """`python -m app emulator --port N` serves Hume's paths on N until interrupted."""
    import signal
    import time

    import httpx

    from tests.servers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "emulator", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
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
