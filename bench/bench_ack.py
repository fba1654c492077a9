"""Webhook acknowledgement, measured from outside, as a ratio to the floor (bench/floor_app.py).

The floor is the fastest durable ack: one INSERT per request through a psycopg pool, no verification.
The service runs as `make run` ships it (`python -m app serve`: signature verification on, the built-in
emulator, the in-process worker, INFO logs) and must store and queue every delivery. Both are separate
processes on one fresh database, loaded alike by wrk (1 thread, 32 connections) in interleaved rounds;
the figures are medians. Every answer must be a fresh 202: a run with anything else is invalid.

Deliveries are distinct and genuine: EVI `chat_started` webhooks signed with the service's key, and
batch callbacks for jobs created here with known URL tokens. Those jobs are already `completed`, so the
worker, which runs during the measurement as it would in production, settles each event with a few
queries (a real callback's ingest is measured by bench_ingest, not here). Each run starts once the
worker has drained the backlog of the runs before it, so no run pays for another's deliveries.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
"""Distinct deliveries per run: more than the floor answers in SECONDS, so none is ever sent twice."""
KINDS = ("evi", "batch")
Delivery = tuple[str, bytes, str, str]


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


def batch_deliveries(url: str, n: int) -> list[Delivery]:
    """n batch callbacks, each for a job of its own (created here) with its URL token."""
    lines: list[Delivery] = []
    with (
        psycopg.connect(url, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy("COPY job (id, kind, status, hume_job_id, callback_token_hash) FROM STDIN") as copy,
    ):
        for _ in range(n):
            job_id, hume_id, token = uuid.uuid4(), str(uuid.uuid4()), secrets.token_urlsafe(32)
            # The hash app.jobs.token_hash stores: only the hash is kept, the token travels in the URL.
            copy.write_row((job_id, "batch", "completed", hume_id, hashlib.sha256(token.encode()).hexdigest()))
            body = orjson.dumps({"job_id": hume_id, "status": "COMPLETED", "predictions": []})
            lines.append((f"/v1/webhooks/hume/batch?job_id={job_id}&token={token}", body, "-", "-"))
    return lines


def deliveries(kind: str, url: str, n: int, path: Path) -> Path:
    wrk.write_deliveries(path, evi_deliveries(n) if kind == "evi" else batch_deliveries(url, n))
    return path


@contextmanager
def floor(url: str, logs: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "floor_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    with wrk.process(argv, {**os.environ, "FLOOR_DATABASE_URL": url}, port, logs / "floor.log"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def service(url: str, logs: Path) -> Iterator[str]:
    """`python -m app serve` as `make run` starts it; RUN_WORKER and LOG_LEVEL may be overridden from the
    environment to compare variants."""
    variant = {"RUN_WORKER": os.environ.get("RUN_WORKER", "true"), "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")}
    with serve(url, {"HUME_WEBHOOK_SIGNING_KEY": SIGNING_KEY, **variant}, log=logs / "service.log") as base:
        yield base


def drain(url: str, timeout_s: float = 300) -> None:
    """Wait until the worker has settled every stored event: its backlog from a service run would
    otherwise take CPU from whichever run comes next (the floor's most of all)."""
    if os.environ.get("RUN_WORKER", "true").lower() == "false":
        return  # the variant without a worker: nothing drains, and nothing competes for the CPU either
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM inbox_event WHERE state = 'received'").fetchone()
            if row is None or row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker left {row[0]} events unprocessed for {timeout_s:.0f} s")
            time.sleep(0.5)


def _event_states(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT provider, state, count(*) FROM inbox_event GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    return ", ".join(f"{provider}/{state}={count}" for provider, state, count in rows)


def run(ctx: Context) -> None:
    if not wrk.available():
        print("bench webhook_ack skipped: wrk not found (Debian: apt-get install wrk)", flush=True)
        return
    runs: dict[tuple[str, str], list[wrk.Run]] = {(k, s): [] for k in KINDS for s in ("floor", "service")}
    with ctx.database() as url, tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        bases = {"floor": stack.enter_context(floor(url, work)), "service": stack.enter_context(service(url, work))}
        for kind in KINDS:  # warm both servers' pools and code paths on deliveries of their own
            warm = deliveries(kind, url, 5000, work / f"warm-{kind}.tsv")
            for base in bases.values():
                drain(url)
                wrk.run_wrk(base, warm, seconds=2)
        for r in range(ROUNDS):
            order = ("floor", "service") if r % 2 == 0 else ("service", "floor")
            for kind in KINDS:
                # One file per round, made just before use (EVI signatures expire), shared by both servers:
                # the floor's table and the service's inbox are separate, so each sees every delivery fresh.
                path = deliveries(kind, url, LINES, work / f"{kind}-{r}.tsv")
                for server in order:
                    drain(url)
                    runs[kind, server].append(wrk.run_wrk(bases[server], path, seconds=SECONDS))
        print(f"(bench_ack: inbox when the last run ended: {_event_states(url)})", file=sys.stderr, flush=True)
        started = time.monotonic()
        drain(url)
        print(f"(bench_ack: the worker's backlog took {time.monotonic() - started:.1f} s more)", file=sys.stderr)
        if any(r.problems() for rs in runs.values() for r in rs):
            # The service's own account of what it refused, before its log goes with the temporary folder.
            refused = [line for line in (work / "service.log").read_text().splitlines() if "status=" in line
                       and "status=202" not in line and "status=200" not in line]  # fmt: skip
            print("(bench_ack: service log, non-2xx)\n" + "\n".join(refused[-15:]), file=sys.stderr)
    invalid = []
    for kind in KINDS:
        problems = [f"{server} round {i}: {'; '.join(p)}" for (k, server), rs in runs.items() if k == kind
                    for i, r in enumerate(rs) if (p := r.problems())]  # fmt: skip
        if problems:
            print(f"bench webhook_ack_{kind} invalid: {' | '.join(problems)}", flush=True)
            invalid.append(kind)
            continue
        floor_rps = statistics.median(r.rps for r in runs[kind, "floor"])
        service_runs = runs[kind, "service"]
        p99 = statistics.median(r.p99_us for r in service_runs) / 1000
        rounds = " ".join(f"{s.rps:.0f}/{f.rps:.0f}" for s, f in zip(service_runs, runs[kind, "floor"], strict=True))
        print(f"(bench_ack: {kind} service p99 {p99:.1f} ms, floor {floor_rps:.0f} req/s; rounds service/floor "
              f"{rounds})", file=sys.stderr)  # fmt: skip
        ctx.report(
            f"webhook_ack_{kind}", statistics.median(r.rps for r in service_runs), "req/s",
            baseline=floor_rps, baseline_name="floor_insert",
        )  # fmt: skip
    if invalid:
        raise RuntimeError(f"invalid runs for {', '.join(invalid)}: every answer must be a fresh 202")
