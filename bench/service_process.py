"""The service as `python -m app serve` in a process of its own, for the benchmarks that drive it with a Python
client: a server in the measuring process shares its CPU and GIL with the client, and a baseline measured
there shares its costs and hides them (an acknowledgement read 0.99x a floor that way, 0.13x from outside)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import wrk
from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def serve(database_url: str, **environment: str) -> Iterator[str]:
    """`python -m app serve` on a fresh port against `database_url`, with `environment` (settings by their
    variable names) over a quiet default: WARNING logs, no in-process worker. Yields its base URL."""
    port = free_port()
    # The bench's own shell may carry a developer's Hume settings: only what the benchmark gives counts.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUME_", "PUBLIC_BASE_URL"))}
    env.update(
        DATABASE_URL=database_url, PORT=str(port), EMULATOR_PORT=str(free_port()), LOG_LEVEL="WARNING",
        RUN_WORKER="false",
    )  # fmt: skip
    env.update(environment)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as logs:
        argv = [sys.executable, "-m", "app", "serve"]
        with wrk.process(argv, env, port, Path(logs) / "service.log", cwd=REPO):
            yield f"http://127.0.0.1:{port}"
