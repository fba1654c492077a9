"""Webhook acknowledgement, measured from outside, as ratios to two floors on each server stack.

The floors (bench/floor_app.py), served by the stack under measurement: the HTTP-only floor answers 202
after reading the body and stores nothing (what the stack alone costs); the durable floor stores each body
with one INSERT through a psycopg pool, no verification (the fastest durable ack one request at a time).
The service runs as `make run` ships it (`python -m app serve` on the production stack: signature
verification on, the built-in emulator, INFO logs), once with its in-process worker and once without
(RUN_WORKER=false, as compose's api containers run), and must store and queue every delivery. Other stacks
serve the same application (`app.web.application:create_process_app`) through their own command line, to
compare stacks: uvicorn on h11 and asyncio (the stack before), and granian when it is installed.

Every server is a process of its own on a fresh database of its own, loaded alike by wrk (1 thread, 32
connections) in interleaved rounds (the order reversed every other round); the figures are medians, and
every ratio is against floors of the same stack measured in the same rounds. Stacks are measured one
after another (their four servers at once), so figures across stacks are from different minutes. Every
answer must be a fresh 202: a run with anything else is invalid.

Deliveries are distinct and genuine: EVI `chat_started` webhooks signed with the service's key, and
batch callbacks for jobs created here with known URL tokens. Those jobs are already `completed`, so the
worker, which runs during the measurement as it would in production, settles each event with a few
queries (a real callback's ingest is measured by bench_ingest, not here). Each run starts once every
worker has drained the backlog of the runs before it, so no run pays for another's deliveries.

BENCH_ACK_STACKS (comma-separated names of STACKS) narrows the stacks measured; the production one always is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

from app.hume.signatures import sign
from bench import wrk
from bench.__main__ import Context
from bench.service_process import serve
from tests.servers import free_port

SIGNING_KEY = "bench-ack-signing-key"  # signs the bench's own deliveries; not a secret
ROUNDS = 3
SECONDS = 8
LINES = 60_000
"""Distinct deliveries per run: more than the fastest server answers in SECONDS, so none is ever sent twice."""
KINDS = ("evi", "batch")
Delivery = tuple[str, bytes, str, str]
SERVICE_APP = "app.web.application:create_process_app"
FLOORS = {"http": "floor_app:http_app", "durable": "floor_app:app"}
ROLES = ("http", "durable", "worker", "no_worker")
"""The two floors, and the service with and without its in-process worker."""


@dataclass(frozen=True)
class Stack:
    name: str
    argv: Callable[[str, int, bool], list[str]]
    """The command serving `target` (module:attribute) on a port, `factory` when target builds the app."""
    production: bool = False
    """The service runs as `python -m app serve` (which configures this stack itself)."""
    needs: str = ""
    """A module the stack needs installed."""

    def available(self) -> bool:
        return not self.needs or importlib.util.find_spec(self.needs) is not None


def _uvicorn(http: str, loop: str) -> Callable[[str, int, bool], list[str]]:
    def argv(target: str, port: int, factory: bool) -> list[str]:
        return [sys.executable, "-m", "uvicorn", *(["--factory"] if factory else []), target,
                "--host", "127.0.0.1", "--port", str(port), "--http", http, "--loop", loop,
                "--log-level", "warning", "--no-access-log"]  # fmt: skip

    return argv


def _granian(target: str, port: int, factory: bool) -> list[str]:
    command = shutil.which("granian", path=str(Path(sys.executable).parent)) or "granian"
    return [command, "--interface", "asgi", *(["--factory"] if factory else []), "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--log-level", "warning", target]  # fmt: skip


STACKS = (
    Stack("uvicorn_httptools_uvloop", _uvicorn("httptools", "uvloop"), production=True),
    Stack("uvicorn_h11_asyncio", _uvicorn("h11", "asyncio")),
    Stack("granian", _granian, needs="granian"),
)


def evi_deliveries(n: int) -> list[Delivery]:
    """n chat_started webhooks of chats never seen before, signed now."""
    timestamp = str(int(time.time()))
    lines: list[Delivery] = []
    for _ in range(n):
        chat = uuid.uuid4().hex
        body = orjson.dumps(
            {"event_name": "chat_started", "chat_group_id": f"g-{chat}", "chat_id": f"c-{chat}",
             "start_time": int(time.time() * 1000), "chat_start_type": "new_chat_group"}
        )  # fmt: skip
        lines.append(("/v1/webhooks/hume/evi", body, sign(body, timestamp, SIGNING_KEY), timestamp))
    return lines


def batch_deliveries(urls: Sequence[str], n: int) -> list[Delivery]:
    """n batch callbacks, each for a job of its own with its URL token, created in every database of `urls`."""
    jobs = [(uuid.uuid4(), str(uuid.uuid4()), secrets.token_urlsafe(32)) for _ in range(n)]
    for url in urls:
        with (
            psycopg.connect(url, autocommit=True) as conn,
            conn.cursor() as cur,
            cur.copy("COPY job (id, kind, status, hume_job_id, callback_token_hash) FROM STDIN") as copy,
        ):
            for job_id, hume_id, token in jobs:
                # The hash app.jobs.token_hash stores: only the hash is kept, the token travels in the URL.
                copy.write_row((job_id, "batch", "completed", hume_id, hashlib.sha256(token.encode()).hexdigest()))
    return [
        (f"/v1/webhooks/hume/batch?job_id={job_id}&token={token}",
         orjson.dumps({"job_id": hume_id, "status": "COMPLETED", "predictions": []}), "-", "-")
        for job_id, hume_id, token in jobs
    ]  # fmt: skip


def deliveries(kind: str, url: str | Sequence[str], n: int, path: Path) -> Path:
    """A file of n fresh deliveries of `kind`; batch callbacks' jobs are made in the database(s) of `url`."""
    urls = [url] if isinstance(url, str) else list(url)
    wrk.write_deliveries(path, evi_deliveries(n) if kind == "evi" else batch_deliveries(urls, n))
    return path


@contextmanager
def floor(stack: Stack, role: str, url: str, logs: Path) -> Iterator[str]:
    with floor_process(stack, role, url, logs) as (base, _):
        yield base


@contextmanager
def floor_process(stack: Stack, role: str, url: str, logs: Path) -> Iterator[tuple[str, int]]:
    """`floor`, yielding the server process's id beside its base URL."""
    port = free_port()
    env = {**os.environ, "FLOOR_DATABASE_URL": url}
    argv = stack.argv(FLOORS[role], port, False)
    with wrk.process(argv, env, port, logs / f"{stack.name}-{role}.log", cwd=Path(__file__).parent) as process:
        yield f"http://127.0.0.1:{port}", process.pid


@contextmanager
def service(stack: Stack, url: str, logs: Path, *, worker: bool) -> Iterator[str]:
    """The service with or without its in-process worker; LOG_LEVEL may be overridden from the environment."""
    variant = {"RUN_WORKER": str(worker).lower(), "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")}
    argv = None if stack.production else (lambda port: stack.argv(SERVICE_APP, port, True))
    log = logs / f"{stack.name}-service-{'worker' if worker else 'no-worker'}.log"
    with serve(url, {"HUME_WEBHOOK_SIGNING_KEY": SIGNING_KEY, **variant}, log=log, argv=argv) as base:
        yield base


def drain(url: str, timeout_s: float = 300) -> None:
    """Wait until the worker has settled every stored event: its backlog from a service run would
    otherwise take CPU from whichever run comes next (the floor's most of all)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM inbox_event WHERE state = 'received'").fetchone()
            if row is None or row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker left {row[0]} events unprocessed for {timeout_s:.0f} s ({_event_states(url)})"
                )
            time.sleep(0.5)


def analyze(url: str) -> None:
    """`job`'s statistics as a database in service has them. These fresh ones grow by thousands of chats a
    second, faster than autovacuum analyzes them, and the foreign-key check plan Postgres keeps per
    connection, made while `job` was empty, read the whole table for every inbox row until it did (101 ms
    for a statement of 64 EVI deliveries with 20,000 chats). The queue's table is left to autovacuum, as in
    service: analyzed while empty (as after a drain) it once made procrastinate's fetch read every waiting
    task (11 s a fetch with 6,000 waiting), which migration 0019 prevents in the database itself."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE job")


def _settled(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM inbox_event WHERE state <> 'received'").fetchone()
    return 0 if row is None else int(row[0])


def _event_states(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT provider, state, count(*) FROM inbox_event GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    return ", ".join(f"{provider}/{state}={count}" for provider, state, count in rows)


def selected_stacks() -> list[Stack]:
    wanted = {s.strip() for s in os.environ.get("BENCH_ACK_STACKS", "").split(",") if s.strip()}
    unknown = wanted - {s.name for s in STACKS}
    if unknown:
        raise RuntimeError(f"BENCH_ACK_STACKS names no stack {sorted(unknown)}: {', '.join(s.name for s in STACKS)}")
    stacks = [s for s in STACKS if s.production or not wanted or s.name in wanted]
    for stack in stacks:
        if not stack.available():
            print(f"(bench_ack: {stack.name} skipped: {stack.needs} is not installed)", file=sys.stderr)
    return [s for s in stacks if s.available()]


def run(ctx: Context) -> None:
    if not wrk.available():
        print("bench webhook_ack skipped: wrk not found (Debian: apt-get install wrk)", flush=True)
        return
    stacks = selected_stacks()
    runs: dict[tuple[str, str, str], list[wrk.Run]] = {}
    settled: dict[tuple[str, str], list[float]] = {}
    # One stack at a time: four servers with their pools are as many connections as a shared Postgres spares.
    for stack in stacks:
        runs.update(_measure(ctx, stack, settled))
    _report(ctx, stacks, runs, _invalid(runs), settled)


def _measure(
    ctx: Context, stack: Stack, settled: dict[tuple[str, str], list[float]]
) -> dict[tuple[str, str, str], list[wrk.Run]]:
    """ROUNDS interleaved rounds of every kind over the stack's floors and service variants; `settled`
    gets, per kind, the events a second the in-process worker settled during each of its runs."""
    runs: dict[tuple[str, str, str], list[wrk.Run]] = {(k, stack.name, r): [] for k in KINDS for r in ROLES}
    with ExitStack() as servers, tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        work = Path(tmp)
        urls = {role: servers.enter_context(ctx.database()) for role in ROLES}
        bases = {
            role: servers.enter_context(
                floor(stack, role, urls[role], work) if role in FLOORS
                else service(stack, urls[role], work, worker=role == "worker")
            )
            for role in ROLES
        }  # fmt: skip
        service_urls = [urls["worker"], urls["no_worker"]]
        for kind in KINDS:  # warm every server's pools and code paths on deliveries of their own
            warm = deliveries(kind, service_urls, 5000, work / f"warm-{kind}.tsv")
            for role in ROLES:
                drain(urls["worker"])
                wrk.run_wrk(bases[role], warm, seconds=2)
        for url in urls.values():
            analyze(url)
        for r in range(ROUNDS):
            order = ROLES if r % 2 == 0 else ROLES[::-1]
            for kind in KINDS:
                # One file per round, made just before use (EVI signatures expire), shared by every server:
                # each has a database of its own, so each sees every delivery fresh.
                path = deliveries(kind, service_urls, LINES, work / f"{kind}-{r}.tsv")
                for role in order:
                    drain(urls["worker"])
                    before, started = _settled(urls["worker"]), time.monotonic()
                    runs[kind, stack.name, role].append(wrk.run_wrk(bases[role], path, seconds=SECONDS))
                    if role == "worker":
                        rate = (_settled(urls["worker"]) - before) / (time.monotonic() - started)
                        settled.setdefault((kind, stack.name), []).append(rate)
        states = _event_states(urls["worker"])
        print(f"(bench_ack: {stack.name} inbox when the last run ended: {states})", file=sys.stderr, flush=True)
        started = time.monotonic()
        drain(urls["worker"])
        print(f"(bench_ack: the worker's backlog took {time.monotonic() - started:.1f} s more)", file=sys.stderr)
        if any(r.problems() for (_, _, role), rs in runs.items() if role != "http" for r in rs):
            # The services' own account of what they refused, before their logs go with the temporary folder.
            for log in sorted(work.glob("*-service-*.log")):
                refused = [line for line in log.read_text().splitlines() if "status=" in line
                           and "status=202" not in line and "status=200" not in line]  # fmt: skip
                if refused:
                    print(f"(bench_ack: {log.name}, non-2xx)\n" + "\n".join(refused[-15:]), file=sys.stderr)
    return runs


def _invalid(runs: dict[tuple[str, str, str], list[wrk.Run]]) -> set[tuple[str, str]]:
    """(kind, stack) pairs with a run that measured nothing, each printed with why."""
    invalid: set[tuple[str, str]] = set()
    for (kind, stack, role), rs in runs.items():
        stores = role != "http"  # the HTTP-only floor outruns LINES, and keeps nothing to see twice
        problems = [f"{role} round {i}: {'; '.join(p)}" for i, r in enumerate(rs) if (p := r.problems(stores=stores))]
        if problems:
            print(f"bench webhook_ack_{kind} {stack} invalid: {' | '.join(problems)}", flush=True)
            invalid.add((kind, stack))
    return invalid


def _report(
    ctx: Context,
    stacks: list[Stack],
    runs: dict[tuple[str, str, str], list[wrk.Run]],
    invalid: set[tuple[str, str]],
    settled: dict[tuple[str, str], list[float]],
) -> None:
    """Per kind and stack: each service variant against both floors of its stack; each stack's floors
    against the production stack's; and what the in-process worker settled meanwhile, against what was
    acknowledged (a worker that keeps up takes CPU from the acknowledgements, so the two go together)."""
    production = next(s for s in stacks if s.production)

    def rps(kind: str, stack: str, role: str) -> float:
        return statistics.median(r.rps for r in runs[kind, stack, role])

    for kind in KINDS:
        for s in stacks:
            if (kind, s.name) in invalid:
                continue
            rounds = " ".join(f"{role}=" + "/".join(f"{r.rps:.0f}" for r in runs[kind, s.name, role]) for role in ROLES)
            print(f"(bench_ack: {kind} on {s.name}, req/s per round: {rounds}; service p99 "
                  f"{statistics.median(r.p99_us for r in runs[kind, s.name, 'worker']) / 1000:.1f} ms)",
                  file=sys.stderr, flush=True)  # fmt: skip
            # The production stack's figures keep their names; other stacks' carry theirs.
            suffix = "" if s.production else f"_{s.name}"
            for role, variant in (("worker", ""), ("no_worker", "_no_worker")):
                value = rps(kind, s.name, role)
                for floor_role in FLOORS:
                    ctx.report(
                        f"webhook_ack_{kind}{variant}{suffix}", value, "req/s",
                        baseline=rps(kind, s.name, floor_role), baseline_name=f"floor_{floor_role}{suffix}",
                    )  # fmt: skip
            ctx.report(
                f"worker_settled_{kind}{suffix}", statistics.median(settled[kind, s.name]), "events/s",
                baseline=rps(kind, s.name, "worker"), baseline_name=f"webhook_ack_{kind}{suffix}",
            )  # fmt: skip
            if not s.production and (kind, production.name) not in invalid:
                for floor_role in FLOORS:
                    ctx.report(
                        f"floor_{floor_role}_{kind}_{s.name}", rps(kind, s.name, floor_role), "req/s",
                        baseline=rps(kind, production.name, floor_role), baseline_name=f"floor_{floor_role}",
                    )  # fmt: skip
    if invalid:
        raise RuntimeError(f"invalid runs for {sorted(invalid)}: every answer must be a fresh 202")
