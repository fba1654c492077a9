"""Storing live sessions' measurements as they arrive against storing the same measurements from a file upload.

Live: N sessions producing measurements at real time through the process's flusher (app/sessions/flusher.py),
as the relay feeds it: audio sessions a measurement every 3 s (Hume's default measurement_timer_ms,
HUME-V1-FACTS §6), 1, 50 and 200 of them, flushed at 1 s (SESSION_FLUSH_MS's default) and the 200 also at
250 ms; 200 video sessions a result every 1/3 s (Hume's 3 frames a second, one or two measured faces), both.
Starts are spread over a period. A session's stats are written once, with its end: the cost of an end is
measured on sessions given a history first (`HISTORY`) and shared by an hour of a session's rows (`HOUR`).
Upload: 1,200 of the same measurements (an hour of speech; 400 s of video)
in one `ingest.ingest` transaction, the file a session would otherwise be. Both make rows with the relay's
own `measurement_rows` from the messages' JSON, on a pool of one connection, into one database, in one run.

Two costs per stored row (a measurement; a measured face of a video result), each against the upload's:
- wall: the flusher's ticks' wall time (taking the measurements to the commit) over the rows they stored;
- cpu: this process's CPU in those ticks (not the tasks standing in for relays) plus the CPU of the Postgres
  backends serving them, the flusher's own connection and the pool's (/proc/<pid>/schedstat): what the work
  costs the machine, whatever the latency.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.emulator.expression_labels import AUDIO_EXPRESSIONS, VIDEO_DESCRIPTIONS, VIDEO_EXPRESSIONS
from app.sessions.flusher import LiveFlusher, measurement_rows
from app.store import api_keys, ingest, jobs, live_sessions
from app.store.db import make_engine, make_sessionmaker
from bench.__main__ import Context

MEASUREMENTS = 1200
PERIOD_S = {"audio": 3.0, "video": 1 / 3}
HISTORY = {"audio": 200, "video": 30}
"""Measurements each session stores before the run, untimed, so that its end writes the stats an hour-long
session's would: 200 audio measurements touch nearly all of their 415 expressions (5-30 each), 30 video
results all of their 48."""
HOUR = {"audio": 1200, "video": 10800}
"""Measurements of an hour-long session, over which its end's cost is shared."""
RUNS = (("audio", 1, 1.0, 36.0), ("audio", 50, 1.0, 15.0), ("audio", 200, 0.25, 15.0), ("audio", 200, 1.0, 15.0),
        ("video", 200, 0.25, 8.0), ("video", 200, 1.0, 8.0))  # fmt: skip
"""(medium, sessions, flush interval s, seconds of real time): one session runs longer, for a dozen
measurements."""


def audio_messages(rng: random.Random) -> list[bytes]:
    out = []
    for i in range(MEASUREMENTS):
        names = rng.sample(AUDIO_EXPRESSIONS, rng.randint(5, 30))
        scored = sorted(((round(rng.uniform(0.1, 0.95), 4), n) for n in names), reverse=True)
        expressions = [{"name": n, "probability": p} for p, n in scored]
        out.append(json.dumps({
            "type": "measurement.result", "measurement_id": i, "utterance_id": i // 4, "audio_start_ms": i * 3000,
            "audio_end_ms": i * 3000 + 3000, "trigger": "interval", "expressions": expressions,
            "voice_attributes": [],
        }).encode())  # fmt: skip
    return out


def video_messages(rng: random.Random) -> list[bytes]:
    """A result per frame: one or two measured faces, each with the expressions over 0.1 (HUME-V1-FACTS §6)."""
    out = []
    for i in range(MEASUREMENTS):
        faces = []
        for face_id in range(rng.choice((1, 1, 2))):
            names = rng.sample(VIDEO_EXPRESSIONS, rng.randint(8, 30))
            scored = sorted(((round(rng.uniform(0.1, 0.95), 4), n) for n in names), reverse=True)
            faces.append({
                "face_id": face_id, "bbox": [10.0 + face_id * 200, 20.0, 170.0 + face_id * 200, 220.0],
                "confidence": round(rng.uniform(0.8, 1.0), 4),
                "expressions": [{"name": n, "probability": p} for p, n in scored],
                "descriptions": [{"name": rng.choice(VIDEO_DESCRIPTIONS), "probability": 0.5}],
            })  # fmt: skip
        out.append(json.dumps({"type": "measurement.result", "frame_id": i, "faces": faces}).encode())
    return out


@dataclass
class Cost:
    stored: int
    wall_s: float
    python_s: float
    backend_s: float
    end_cpu_s: float = 0.0
    """A session's end (its last flush and its stats written) over an hour of its rows, per row."""

    def per_row(self) -> tuple[float, float]:
        """(wall, cpu) microseconds per stored row."""
        cpu = (self.python_s + self.backend_s) / self.stored + self.end_cpu_s
        return self.wall_s / self.stored * 1e6, cpu * 1e6


class Backend:
    """The CPU time of a Postgres backend: the pool's one connection's, or the flusher's own."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._schedstat = Path(f"/proc/{pid}/schedstat")

    def cpu_s(self) -> float:
        return int(self._schedstat.read_text().split()[0]) / 1e9


async def backend_pid(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def upload(
    sessionmaker: async_sessionmaker[AsyncSession], medium: str, bodies: list[bytes], backend: Backend
) -> Cost:
    python, db, started = time.process_time(), backend.cpu_s(), time.perf_counter()
    async with sessionmaker.begin() as session:
        job = await jobs.create(session, kind="batch", backend="v1", status="in_progress", request={})
        rows = measurement_rows(medium, [(i, body, i * 333) for i, body in enumerate(bodies)])
        count = await ingest.ingest(
            session, job.id, [ingest.SourceRecord(kind="url", url=f"https://example.com/{medium}")], rows
        )
    return Cost(count, time.perf_counter() - started, time.process_time() - python, backend.cpu_s() - db)


async def open_sessions(sessionmaker: async_sessionmaker[AsyncSession], medium: str, n: int) -> list[uuid.UUID]:
    async with sessionmaker.begin() as session:
        key = await api_keys.create(session, name=f"bench-{uuid.uuid4()}", scopes=["session"])
        principal = await api_keys.find(session, key)
        assert principal is not None
        opened = []
        for _ in range(n):
            redeemed = live_sessions.Redeemed(
                api_key_id=principal.key_id, tenant="default", job_id=uuid.uuid4(), metadata={}
            )
            job_id, _ = await live_sessions.start(session, redeemed=redeemed, medium=medium, request={})
            opened.append(job_id)
    return opened


async def produce(flusher: LiveFlusher, job_id: uuid.UUID, bodies: list[bytes], period_s: float, at: float) -> None:
    """A session's measurements at real time: one every `period_s`, from `at` (monotonic) on."""
    for i, body in enumerate(bodies):
        await asyncio.sleep(max(0.0, at + i * period_s - time.monotonic()))
        if not flusher.add(job_id, i, body, int(i * period_s * 1000)):
            raise RuntimeError("a session's buffer filled: the flusher fell behind")


async def ended(session: AsyncSession) -> None:
    """A session's job's own end (outbox, webhooks) is not ingest."""


async def live(
    sessionmaker: async_sessionmaker[AsyncSession],
    medium: str,
    bodies: list[bytes],
    n: int,
    interval_s: float,
    seconds: float,
    backend: Backend,
) -> tuple[Cost, int]:
    """N sessions for `seconds` through a flusher; (cost, transactions)."""
    sessions = await open_sessions(sessionmaker, medium, n)
    flusher = LiveFlusher(sessionmaker, interval_s=interval_s)
    for job_id in sessions:
        flusher.open(job_id, medium)
    ticks = Backend(await flusher.backend_pid())
    db = backend.cpu_s() + ticks.cpu_s()
    await flusher.start()
    period, begun = PERIOD_S[medium], time.monotonic()
    producers = [
        asyncio.create_task(produce(flusher, job_id, bodies, period, begun + k * period / n))
        for k, job_id in enumerate(sessions)
    ]
    await asyncio.sleep(seconds)
    for task in producers:
        task.cancel()
    await asyncio.gather(*producers, return_exceptions=True)
    await flusher.tick()  # what is still held, before closing drops the connection measured
    totals = flusher.totals
    if totals.failed:
        raise RuntimeError(f"{totals.failed} session flushes failed")
    cost = Cost(totals.stored, totals.seconds, totals.cpu_seconds, backend.cpu_s() + ticks.cpu_s() - db)
    if await flusher.backend_pid() != ticks.pid:
        raise RuntimeError("the flusher's connection was replaced: its backend's CPU was not all counted")
    await flusher.aclose()
    for job_id in sessions:
        await flusher.finish(job_id, ended)
    return cost, totals.transactions


async def session_end(
    sessionmaker: async_sessionmaker[AsyncSession], medium: str, bodies: list[bytes], backend: Backend
) -> float:
    """CPU seconds of a session's end (its last flush, its stats written) over the rows of an hour-long
    session: sessions given their `HISTORY` first (untimed), so that their ends write what an hour's would."""
    n = 20
    sessions = await open_sessions(sessionmaker, medium, n)
    flusher = LiveFlusher(sessionmaker, interval_s=0.25)
    for job_id in sessions:
        flusher.open(job_id, medium)
    for i in range(HISTORY[medium]):
        for job_id in sessions:
            flusher.add(job_id, i, bodies[i], 0)
        await flusher.tick()
    python, db = time.process_time(), backend.cpu_s()
    for job_id in sessions:
        await flusher.finish(job_id, ended)
    ends = time.process_time() - python + backend.cpu_s() - db
    await flusher.aclose()
    rows = sum(1 for _ in measurement_rows(medium, [(i, body, 0) for i, body in enumerate(bodies)]))
    return ends / n / (HOUR[medium] * rows / len(bodies))


async def measure(url: str) -> list[tuple[str, int, float, Cost, Cost, int]]:
    engine = make_engine(url, pool_size=1)
    try:
        sessionmaker = make_sessionmaker(engine)
        backend = Backend(await backend_pid(sessionmaker))
        rng = random.Random(24)
        bodies = {"audio": audio_messages(rng), "video": video_messages(rng)}
        floors: dict[str, list[Cost]] = {}
        for medium, messages in bodies.items():
            await upload(sessionmaker, medium, messages, backend)  # the emotion order learns the names first
            floors[medium] = [await upload(sessionmaker, medium, messages, backend) for _ in range(2)]
        lives = []
        for medium, n, interval_s, seconds in RUNS:
            cost, transactions = await live(sessionmaker, medium, bodies[medium], n, interval_s, seconds, backend)
            lives.append((medium, n, interval_s, cost, transactions))
            floors[medium].append(await upload(sessionmaker, medium, bodies[medium], backend))
        # Last: the histories' updates would weigh on the runs after them.
        ends = {
            medium: await session_end(sessionmaker, medium, messages, backend) for medium, messages in bodies.items()
        }
        if await backend_pid(sessionmaker) != backend.pid:
            raise RuntimeError("the pool's connection was replaced: the backend's CPU was not all counted")
        out = []
        for medium, n, interval_s, cost, transactions in lives:
            cost.end_cpu_s = ends[medium]
            # The cheapest upload of the run (each figure its own minimum): the floor the 1.2x is against.
            ups = floors[medium]
            floor = Cost(ups[0].stored, min(u.wall_s for u in ups), min(u.python_s for u in ups),
                         min(u.backend_s for u in ups))  # fmt: skip
            out.append((medium, n, interval_s, cost, floor, transactions))
        return out
    finally:
        await engine.dispose()


def run(ctx: Context) -> None:
    with ctx.database() as url:
        results = asyncio.run(measure(url))
    for medium, n, interval_s, cost, floor, transactions in results:
        wall, cpu = cost.per_row()
        floor_wall, floor_cpu = floor.per_row()
        name = f"live_ingest_{medium}_{n}_sessions_{int(interval_s * 1000)}ms"
        print(f"  {name}: {cost.stored} rows by {transactions} transactions "
              f"({cost.stored / max(1, transactions):.1f} each); CPU a row "
              f"{cost.python_s / cost.stored * 1e6:.0f} us Python + {cost.backend_s / cost.stored * 1e6:.0f} us "
              f"Postgres + {cost.end_cpu_s * 1e6:.1f} us its session's end; upload "
              f"{floor.python_s / floor.stored * 1e6:.0f} + {floor.backend_s / floor.stored * 1e6:.0f}",
              flush=True)  # fmt: skip
        ctx.report(f"{name}_wall", wall, "us/row", baseline=floor_wall,
                   baseline_name=f"file_upload_ingest_{medium}_wall")  # fmt: skip
        ctx.report(f"{name}_cpu", cpu, "us/row", baseline=floor_cpu,
                   baseline_name=f"file_upload_ingest_{medium}_cpu")  # fmt: skip
