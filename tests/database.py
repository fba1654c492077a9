"""Test databases: one server per session (the ladder below), one migrated template, one clone per test.

Ladder: TEST_DATABASE_URL; else testcontainers where a Docker engine answers; else embedded Postgres.
Cloning a template (CREATE DATABASE ... TEMPLATE) gives each test a fresh, fully migrated database in
a fraction of a second, so tests may commit, race and crash workers freely. The test session keeps spare
clones made ahead and drops used ones in a background thread, so no test waits for either.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from app.cli import migrate


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ladder_step() -> str:
    """Which rung `server_url` will use, for the test run's header."""
    if os.environ.get("TEST_DATABASE_URL"):
        return "TEST_DATABASE_URL"
    if _docker_answers():
        return "a testcontainers Postgres (Docker), or the embedded one if no container starts (a line says why)"
    return "an embedded Postgres (pgserver; no TEST_DATABASE_URL, no Docker)"


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver=None)
        try:
            container.start()
        except Exception as exc:
            # Docker answers but cannot run the container (no registry to pull from, say): the embedded
            # Postgres serves instead, said once, rather than every test erroring in its setup.
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            sys.stderr.write(f"\ntests: Docker answers but no Postgres container started ({reason}); "
                             "using the embedded Postgres\n")  # fmt: skip
        else:
            try:
                yield container.get_connection_url()
            finally:
                container.stop()
            return
    from app.commands import embedded

    directory = Path(tempfile.mkdtemp(prefix="hes-test-pg-"))
    handle, url = embedded.start(directory / "data", cleanup="delete")
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            embedded.stop(handle)
        shutil.rmtree(directory, ignore_errors=True)


class Databases:
    """Creates the migrated template once, then hands out clones.

    With `spares`, background threads keep that many clones made ahead and drops released ones: each
    CREATE or DROP takes 0.1-1 s on a busy server, paid meanwhile instead of inside a test's setup and
    teardown. Without (the benchmarks), everything happens in the caller, so nothing runs behind a measurement.
    """

    def __init__(self, admin_url: str, *, spares: int = 0) -> None:
        self.admin_url = admin_url
        self.prefix = f"hes_{os.getpid()}"
        self.template = f"{self.prefix}_tpl"
        self._counter = itertools.count()
        self._execute(f'DROP DATABASE IF EXISTS "{self.template}"')
        self._execute(f'CREATE DATABASE "{self.template}"')
        migrate(with_database(admin_url, self.template))
        # Two threads, so a slow DROP never holds up the next CREATE.
        self._background = ThreadPoolExecutor(2, thread_name_prefix="test-databases") if spares else None
        self._ready: deque[Future[str]] = deque()
        self._released: list[Future[None]] = []
        for _ in range(spares):
            self._ready.append(self._submit(self._create))

    def _submit(self, work: Any, *args: Any) -> Future[Any]:
        assert self._background is not None
        return self._background.submit(work, *args)

    def _execute(self, sql: str, **params: Any) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql, params)

    def _create(self) -> str:
        name = f"{self.prefix}_{next(self._counter)}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def clone(self) -> tuple[str, str]:
        if self._background is None:
            name = self._create()
        else:
            self._ready.append(self._submit(self._create))
            name = self._ready.popleft().result()
        return name, with_database(self.admin_url, name)

    def release(self, name: str) -> None:
        """Drop a clone nobody uses any more: later, in the background, when spares are kept."""
        if self._background is None:
            self.drop(name)
        else:
            self._released.append(self._submit(self.drop, name))

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        try:
            for released in self._released:
                released.result()
            for ready in self._ready:
                self.drop(ready.result())
        finally:
            if self._background is not None:
                self._background.shutdown(cancel_futures=True)
            self.drop(self.template)
