"""A Postgres of the test's own (embedded pgserver) that it may stop and start: never the shared server."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.cli import migrate
from app.commands import embedded


@dataclass
class OwnPostgres:
    handle: Any
    url: str

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        _commands.pg_ctl(list(args), pgdata=self.handle.pgdata, user=self.handle.system_user, timeout=30)  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, new ones refused, as in a crash or failover."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.handle.log), "start")
        # pgserver remembers the postmaster it started; point it at the new one so cleanup stops it.
        from pgserver.utils import PostmasterInfo

        self.handle._postmaster_info = PostmasterInfo.read_from_pgdata(self.handle.pgdata)


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    directory = Path(tempfile.mkdtemp(prefix="hes-outage-pg-"))
    handle, url = embedded.start(directory / "data", cleanup="delete")
    try:
        migrate(url)
        yield OwnPostgres(handle, url)
    finally:
        with contextlib.suppress(Exception):
            embedded.stop(handle)
        shutil.rmtree(directory, ignore_errors=True)
