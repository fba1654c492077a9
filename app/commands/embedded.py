"""The embedded Postgres (the `pgserver` package) for development and tests with no server configured."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(data_dir: Path, *, cleanup: str | None = "stop") -> tuple[Any, str]:
    """Start (or reuse) a Postgres whose data lives in `data_dir`; returns (handle, libpq URL).

    Call `stop(handle)` when done: with cleanup="stop" the server stops once no live process holds a
    handle, so Ctrl-C leaves nothing running.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir, cleanup_mode=cleanup)  # type: ignore[attr-defined]
    return server, str(server.get_uri())


def stop(handle: Any) -> None:
    # pgserver counts handles by pid in a file; a process killed earlier leaves its pid behind and
    # would keep the server running forever, so forget pids that are gone before releasing ours.
    pids = handle.global_process_id_list
    pids.put([pid for pid in pids.get() if pid == os.getpid() or _alive(pid)])
    handle.cleanup()


def psql_path() -> str | None:
    """The psql that ships with the embedded Postgres, for the start-up banner."""
    import pgserver

    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return str(path) if path.exists() else None
