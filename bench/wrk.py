"""Load from outside: servers in processes of their own, driven by wrk (Debian's `wrk`) through replay.lua.

A client in the server's process would share its GIL, and a Python client is slower than the servers it
measures; wrk is neither. Each delivery file line is `path<TAB>body<TAB>signature<TAB>timestamp`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPLAY_LUA = Path(__file__).with_name("replay.lua")
_RESULT = re.compile(r"^RESULT (.*)$", re.MULTILINE)


def available() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True)
class Run:
    requests: int
    duration_us: int
    accepted: int
    """Answered 202: stored and queued now."""
    duplicate: int
    """Answered 200: already stored, so the run replayed deliveries instead of measuring new ones."""
    other: int
    lines: int
    socket_errors: int
    p50_us: int
    p99_us: int

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    def problems(self, *, stores: bool = True) -> list[str]:
        """Why this run measured nothing, if it did not: every answer must be a fresh 2xx. A server that
        stores nothing (`stores` false) may be sent a delivery twice."""
        found = []
        if self.other:
            found.append(f"{self.other} non-2xx answers")
        if self.socket_errors:
            found.append(f"{self.socket_errors} socket errors")
        if self.duplicate:
            found.append(f"{self.duplicate} duplicates (200)")
        if stores and self.requests >= self.lines:
            found.append(f"{self.requests} requests cycled through {self.lines} distinct deliveries")
        return found


def write_deliveries(path: Path, lines: Sequence[tuple[str, bytes, str, str]]) -> None:
    with path.open("wb") as out:
        for route, body, signature, timestamp in lines:
            out.write(b"\t".join((route.encode(), body, signature.encode(), timestamp.encode())) + b"\n")


def run_wrk(base_url: str, deliveries: Path, *, seconds: int, connections: int = 32) -> Run:
    """One wrk run (one thread) over the deliveries file against base_url."""
    # wrk from PATH with arguments we build: nothing here comes from outside the bench.
    completed = subprocess.run(  # noqa: S603
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(REPLAY_LUA), base_url],  # noqa: S607
        env={**os.environ, "REQS": str(deliveries)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    found = _RESULT.search(completed.stdout)
    if completed.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout}{completed.stderr}")
    fields = dict(pair.split("=", 1) for pair in found.group(1).split())
    return Run(**{name: int(value) for name, value in fields.items()})


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def process(
    argv: Sequence[str], env: Mapping[str, str], port: int, log: Path, *, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, yielded once its port accepts connections (uvicorn binds after the lifespan
    started, so the pools are open by then); terminated and reaped afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603  # our argv
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{argv[:3]} did not start listening on {port}:\n{tail}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
