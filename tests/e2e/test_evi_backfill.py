"""`python -m app evi-backfill --since DATE`, run as an operator runs it, against the emulator's chat history."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from app.emulator.testing import EmulatorServer
from tests.conftest import hume_environment

ROOT = Path(__file__).resolve().parents[2]


def backfill(since: str, database_url: str, emulator: EmulatorServer) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        **hume_environment(emulator),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "evi-backfill", "--since", since],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_backfill_command_ingests_past_chats_once(database_url: str, emulator: EmulatorServer) -> None:
    """Chats listed since the date are stored as completed evi_chat jobs with their prosody; a second run
    finds them stored and adds nothing."""
    chats = [emulator.create_chat(turns=2 + i, seed=f"cli-{i}", send_webhooks=False) for i in range(3)]
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    first = backfill(since, database_url, emulator)
    assert first.returncode == 0, first.stderr
    assert "3 chats" in first.stdout and "3 ingested" in first.stdout, first.stdout
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT hume_job_id, status, num_predictions FROM job WHERE kind = 'evi_chat' ORDER BY num_predictions"
        ).fetchall()
        predictions = conn.execute("SELECT count(*) FROM prediction WHERE model = 'prosody'").fetchone()
    assert stored == [(c["id"], "completed", 2 * (2 + i)) for i, c in enumerate(chats)]
    assert predictions == (2 * (2 + 3 + 4),)

    second = backfill(since, database_url, emulator)
    assert second.returncode == 0, second.stderr
    assert "0 ingested, 3 already stored" in second.stdout, second.stdout


def test_backfill_refuses_a_bad_date(database_url: str, emulator: EmulatorServer) -> None:
    """A --since that is not a date is a usage error naming the value, not a traceback."""
    result = backfill("last tuesday", database_url, emulator)
    assert result.returncode == 2
    assert "last tuesday" in result.stderr and "Traceback" not in result.stderr
