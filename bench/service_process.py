"""The service as `python -m app serve` in a process of its own, for every benchmark that measures it: a server
in the measuring process shares its CPU and GIL with the client, and a baseline measured there shares its
costs and hides them (an acknowledgement read 0.99x a floor that way, 0.13x from outside)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import wrk
from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def serve(
    database_url: str,
    environment: Mapping[str, str],
    *,
    log: Path | None = None,
    argv: Callable[[int], Sequence[str]] | None = None,
) -> Iterator[str]:
    """`python -m app serve` on a fresh port against `database_url`, with `environment` (settings by their
    variable names) over a quiet default: WARNING logs, no in-process worker. Its output goes to `log` (a
    temporary file unless given). `argv(port)`: another command serving the application from the same
    environment (another server stack). Yields its base URL."""
    with serve_process(database_url, environment, log=log, argv=argv) as (url, _):
        yield url


@contextmanager
def serve_process(
    database_url: str,
    environment: Mapping[str, str],
    *,
    log: Path | None = None,
    argv: Callable[[int], Sequence[str]] | None = None,
) -> Iterator[tuple[str, int]]:
    """`serve`, yielding the server process's id beside its base URL (one process: WEB_CONCURRENCY unset)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The bench's own shell may carry a developer's Hume or metrics settings: only what the benchmark gives counts.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUME_", "PUBLIC_BASE_URL", "PROMETHEUS"))}
    env.update(
        DATABASE_URL=database_url, PORT=str(port), PUBLIC_BASE_URL=url, EMULATOR_PORT=str(free_port()),
        EMULATOR_CLOUD_PORT=str(free_port()),
        LOG_LEVEL="WARNING", RUN_WORKER="false",
    )  # fmt: skip
    env.update(environment)
    with ExitStack() as stack:
        if log is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-serve-"))) / "service.log"
        command = [sys.executable, "-m", "app", "serve"] if argv is None else argv(port)
        process = stack.enter_context(wrk.process(command, env, port, log, cwd=REPO))
        print(f"(service pid {process.pid} on {url}, log {log})", file=sys.stderr, flush=True)  # for py-spy
        yield url, process.pid
