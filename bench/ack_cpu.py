"""Where an acknowledgement's CPU goes: each process's CPU per request while wrk loads it, read from /proc.

    python -m bench.ack_cpu [evi|batch|floor] [seconds]

`evi`/`batch`: `python -m app serve` without its worker (as bench_ack's `*_no_worker`), on a fresh database,
taking bench_ack's signed deliveries; it prints the serve process's CPU, its database's Postgres backends'
and wrk's, in microseconds per delivery. `floor`: bench_ack's HTTP-only floor on the production stack, the
server's and wrk's. The shares say what a target costs on a machine of N cores: at R requests a second each
request has N / R seconds of CPU for every process together. Profile the serve process meanwhile with
`py-spy record -p <pid>` (the pid is printed). Not a benchmark (`make bench` does not run it): it reports no
ratio, only where the time of one goes.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench import bench_ack, wrk
from bench.service_process import serve_process
from tests.database import Databases, server_url

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def backends_cpu_s(admin_url: str, database: str) -> float:
    """CPU seconds of the Postgres backends connected to `database` (their server must be on this machine)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
    return sum(process_cpu_s(p) for p in pids if Path(f"/proc/{p}").exists())


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    base: str, deliveries: Path, seconds: int, readers: dict[str, Callable[[], float]], *, stores: bool = True
) -> None:
    """One wrk run; each reader's CPU over it, per request answered (`stores`: a server that keeps nothing may
    see a delivery twice)."""
    before = {name: read() for name, read in readers.items()}
    wrk_before = children_cpu_s()
    run = wrk.run_wrk(base, deliveries, seconds=seconds)
    spent = {name: read() - before[name] for name, read in readers.items()}
    spent["wrk"] = children_cpu_s() - wrk_before
    requests = run.rps * seconds
    shares = ", ".join(f"{name} {1e6 * cpu / requests:.0f} us" for name, cpu in spent.items())
    print(f"{run.rps:.0f} req/s; CPU a request: {shares}; problems: {run.problems(stores=stores) or 'none'}")


def main(kind: str, seconds: int) -> None:
    stack = bench_ack.STACKS[0]  # the production stack
    with server_url() as admin_url, tempfile.TemporaryDirectory(prefix="ack-cpu-") as tmp:
        work = Path(tmp)
        databases = Databases(admin_url)
        name, url = databases.clone()
        try:
            if kind == "floor":
                with bench_ack.floor_process(stack, "http", url, work) as (base, pid):
                    path = bench_ack.deliveries("evi", url, 80_000, work / "evi.tsv")
                    print(f"(floor_http pid {pid} on {base})", file=sys.stderr, flush=True)
                    wrk.run_wrk(base, path, seconds=2)  # warm-up
                    measure(base, path, seconds, {"server": lambda: process_cpu_s(pid)}, stores=False)
                return
            environment = {"HUME_WEBHOOK_SIGNING_KEY": bench_ack.SIGNING_KEY, "RUN_WORKER": "false",
                           "LOG_LEVEL": "INFO"}  # fmt: skip
            with serve_process(url, environment, log=work / "service.log") as (base, pid):
                # As bench_ack: a warm-up on deliveries of its own, then `job` analyzed with the chats it made,
                # then fresh deliveries (none a duplicate).
                wrk.run_wrk(base, bench_ack.deliveries(kind, url, 5_000, work / f"{kind}-warm.tsv"), seconds=2)
                bench_ack.analyze(url)
                path = bench_ack.deliveries(kind, url, 80_000, work / f"{kind}.tsv")
                readers = {"serve": lambda: process_cpu_s(pid), "postgres": lambda: backends_cpu_s(admin_url, name)}
                measure(base, path, seconds, readers)
        finally:
            databases.drop(name)
            databases.close()


if __name__ == "__main__":
    if not wrk.available():
        sys.exit("wrk not found (Debian: apt-get install wrk)")
    chosen = sys.argv[1] if len(sys.argv) > 1 else "evi"
    if chosen not in ("evi", "batch", "floor"):
        sys.exit("usage: python -m bench.ack_cpu [evi|batch|floor] [seconds]")
    main(chosen, int(sys.argv[2]) if len(sys.argv) > 2 else 10)
