"""The embedded Postgres (the `pgserver` package) for development and tests with no server configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start(data_dir: Path, *, cleanup: str | None = "stop") -> tuple[Any, str]:
    """Start (or reuse) a Postgres whose data lives in `data_dir`; returns (handle, libpq URL).

    Keep the handle alive as long as the database is needed: with cleanup="stop" the server stops
    when the last handle goes away, so Ctrl-C leaves nothing running.
    """
    import pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=cleanup)  # type: ignore[attr-defined]
    return server, str(server.get_uri())
