"""Run the benchmarks: each bench/bench_*.py exposes `run(ctx: Context) -> None` and reports figures.

Every figure is printed as CONTRACT.md says, as a ratio to a baseline measured in the same run,
because these machines are noisy:  bench <name> <value> <unit> ratio=<value/baseline> baseline=<name>
Usage: python -m bench [name-substring ...]
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.database import Databases, server_url


@dataclass
class Context:
    databases: Databases
    figures: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, migrated database (a template clone), dropped afterwards."""
        name, url = self.databases.clone()
        try:
            yield url
        finally:
            self.databases.drop(name)

    def report(self, name: str, value: float, unit: str, *, baseline: float, baseline_name: str) -> None:
        ratio = value / baseline if baseline else float("nan")
        line = f"bench {name} {value:.6g} {unit} ratio={ratio:.3f} baseline={baseline_name}"
        self.figures.append(line)
        print(line, flush=True)


def main(argv: list[str]) -> int:
    selected = argv or []
    modules = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    if not modules:
        print("no benchmarks found", file=sys.stderr)
        return 1
    if os.environ.get("TEST_DATABASE_URL") is None:
        print("(TEST_DATABASE_URL unset: using an embedded Postgres)", file=sys.stderr)
    with server_url() as url:
        databases = Databases(url)
        try:
            ctx = Context(databases=databases)
            failed: list[str] = []
            for name in modules:
                if selected and not any(s in name for s in selected):
                    continue
                module = importlib.import_module(f"bench.{name}")
                try:
                    module.run(ctx)
                except Exception:
                    # One broken benchmark must not hide the others' figures; the exit code still says so.
                    failed.append(name)
                    traceback.print_exc()
        finally:
            databases.close()
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
