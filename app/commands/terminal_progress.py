"""`n/N` progress on a terminal (stderr), and nothing when output goes to a file or a pipe."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class Progress:
    """Rewrites one status line at most ten times a second; `done()` ends it with a newline."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = total
        self.count = 0
        self._shown = 0.0

    def advance(self, by: int = 1) -> None:
        self.set(self.count + by)

    def set(self, count: int, note: str = "", *, total: int | None = None) -> None:
        self.count = count
        self.total = self.total if total is None else total
        now = time.monotonic()
        if self.enabled and (now - self._shown >= 0.1 or count == self.total):
            self._shown = now
            of = f"/{self.total}" if self.total is not None else ""
            self.stream.write(f"\r{self.label} {count}{of}{(' ' + note) if note else ''}\x1b[K")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.done()
