"""How a command fails: one line on stderr and an exit code, never a traceback for a user's mistake.
Also the database check every database command makes first, so a dead or unmigrated database is
reported in seconds instead of after a pool's 30 s timeout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import psycopg

from app.config.sources import libpq_url

USAGE = 2
FAILED = 1


class CommandError(Exception):
    """A message for the user (one line) and the exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code


def describe(url: str) -> str:
    parts = urlsplit(libpq_url(url))
    host = parts.hostname or parse_qs(parts.query).get("host", ["a local socket"])[0]
    return f"{host}:{parts.port or 5432}{parts.path}"


def check_database(url: str, *, migrated: bool = True) -> None:
    """Fail fast, in one line, if the database cannot be reached (3 s at most) or is not migrated."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
            row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or ["no answer"])[0].rsplit(": ", 1)[-1]
        raise CommandError(f"cannot reach the database at {describe(url)} (DATABASE_URL): {reason}", FAILED) from None
    if migrated and not (row and row[0]):
        raise CommandError(
            f"the database at {describe(url)} is not migrated: run `python -m app migrate` first", FAILED
        )
