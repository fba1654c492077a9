"""The process's one writer of live sessions' measurements: when the oldest measurement held has waited
SESSION_FLUSH_MS (1 s) or BATCH_ROWS (1024) are held, whichever first, it stores what all of its sessions
received in one transaction (`live_sessions.append_many`: one COPY of every session's rows, then one
statement for their marks, job counts and due heartbeats) on a connection of its own, with the emotion order
kept between ticks instead of read each time; a session's stats are added up here and written with its end.
A measurement reaches the store within SESSION_FLUSH_MS and a tick (15-150 ms here) of its arrival.

A tick has a fixed cost (the transaction's round trips: BEGIN, the COPY's, the statement, COMMIT; 4-5 ms of
CPU, Python and Postgres, on the loaded 2-core machine, about what an upload pays to store 90 measurements)
that its rows share, and a cost per session in it (its mark and job count: ~10 us of Postgres); each row
then costs about 1.5-2x what it does in an upload. bench live_ingest, CPU a row against an upload's, three runs
on the loaded 2-core machine, at 1 s: 200 audio sessions (67 rows a tick) 3.3-4.1x (6.6-8.1x at 250 ms),
200 video sessions 1.4-1.8x (875 rows a tick; 2.0-2.4x at 250 ms), 50 audio sessions 7.7-9.8x, one
100x+. What the ticks' own connection (no pool checkout or ping) saves is within the bench's noise (200
audio sessions at 250 ms: 8.1-8.2x in two runs before, 6.6-8.1x in three after).

Each measurement is stored once: a session's highest stored id is kept with it in the database, moved by
each flush from the value its writer knew (read under the row's lock when not known): a retried batch (its
commit lost with the connection), an id Hume sends again or a second writer stores nothing new. What was
received stays in memory until the transaction holding it commits: a failed tick keeps it for the next one,
which makes a new connection (a tick the database refuses for one session's rows is tried again session by
session, so that session cannot hold the others back), and a session's last measurements are stored by
`finish` in the transaction that ends its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import psycopg
import sqlalchemy.exc
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.prediction_rows import PredictionFormatError, PredictionRow
from app.hume.expression_rows import audio_rows, video_rows
from app.store import live_sessions
from app.store.emotion_order import EmotionOrder, load_emotion_order

log = structlog.get_logger(__name__)

HEARTBEAT_S = 10.0
"""How often a session's heartbeat is written (SESSION_STALE_S is 60 s); not every tick: heartbeat_at is
indexed, so writing it gives the row a new index entry where a move of its mark alone stays on its page."""
BATCH_ROWS = 1024
"""Measurements held (all sessions) that start a tick before SESSION_FLUSH_MS is up: a bound on a tick's
COPY (1-4 MB of JSON), not a saving: each tick also writes every session's mark, so earlier ticks cost more
(bench live_ingest, 200 video sessions at 1 s: 1.6x an upload's CPU a row with 1024, 2.0x with 256, where
ticks came every 0.4 s). A tick's fixed cost shared by 1024 rows is ~10% of theirs."""
PENDING_MAX_BYTES = 512 * 1024
"""A session's measurements held unstored, at most (their JSON): while the database is away, 45 s to 1.5 min
of a video session's results (3 a second, 1.8 KB on average in bench live_ingest, 4 KB with two faces fully
listed), about SESSION_STALE_S, after which the reconciler counts its relay as lost anyway; 20 minutes of an
audio session's (1.2 KB every 3 s of speech). 200 sessions: at most 100 MiB."""
_UNREACHABLE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, psycopg.OperationalError, OSError,
                TimeoutError, live_sessions.Conflict)  # fmt: skip
"""The database is away or the transaction was cut (connection lost, deadlock, cancelled), or a session's row
was not as known: every session waits for the next tick, its row read again. Any other failure is one
session's rows: the tick is tried session by session."""


def measurement_rows(
    medium: str, items: Sequence[tuple[int, bytes, int]], source_index: int = 0
) -> Iterator[PredictionRow]:
    """Measurement messages (id, JSON, ms since the session opened) as prediction rows of the session's one
    source: audio windows are already in ms from the session's start (HUME-V1-FACTS §8: times count from
    accepted audio); a video result is placed at the time it arrived (frame ids count results, not frames)."""
    document = b'{"measurements":[' + b",".join(body for _, body, _ in items) + b"]}"
    if medium == "audio":
        return audio_rows(source_index, None, 0, document)
    return video_rows(source_index, None, [(i, at_ms) for i, _, at_ms in items], document)


@dataclass
class _Session:
    medium: str
    items: list[tuple[int, bytes, int]] = field(default_factory=list)
    """Received and not taken by a tick yet: (id, the message's JSON, ms since the session opened)."""
    held: int = 0
    """Bytes of JSON received and not stored yet (waiting or in a tick's transaction)."""
    beaten: float = field(default_factory=time.monotonic)
    """When its heartbeat was last written."""
    stats: live_sessions.SessionStats = field(default_factory=live_sessions.SessionStats)
    """What its stored rows add up to, written at its end (see live_sessions.SessionStats)."""
    known: tuple[int, int] | None = None
    """(highest id stored, source id) as its last committed flush left them; None: read in the next."""
    ended: bool = False
    """Its relay is gone but its last measurements could not be stored with its end: the next ticks store
    them (no heartbeat of its own), then forget it."""

    def batch(self, job_id: uuid.UUID, items: list[tuple[int, bytes, int]]) -> live_sessions.Batch:
        bodies = {i: (body, at_ms) for i, body, at_ms in items}

        def rows(ids: Sequence[int], source_index: int) -> Iterable[PredictionRow]:
            return measurement_rows(self.medium, [(i, *bodies[i]) for i in ids], source_index)

        return live_sessions.Batch(job_id, list(bodies), rows, self.known)


@dataclass
class Tick:
    """What one tick did, for logs, tests and the bench."""

    sessions: int = 0
    stored: int = 0
    failed: int = 0
    """Sessions whose measurements stay pending (or were dropped as malformed) after this tick."""
    transactions: int = 0
    """1 when there was something to write, more when it was retried session by session."""
    seconds: float = 0.0
    """Wall time from taking the measurements to the commit (or the failure)."""
    cpu_seconds: float = 0.0
    """This process's CPU time meanwhile."""

    def add(self, other: Tick) -> None:
        self.sessions += other.sessions
        self.stored += other.stored
        self.failed += other.failed
        self.transactions += other.transactions
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds


class LiveFlusher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        interval_s: float,
        heartbeat_s: float = HEARTBEAT_S,
        max_pending_bytes: int = PENDING_MAX_BYTES,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self._sessionmaker = sessionmaker
        # The ticks' connection is made by an engine of its own without a pool: held for the process's life,
        # it is not one of the requests' pool, and nothing checks it out or pings it each tick.
        self._engine: AsyncEngine = create_async_engine(
            sessionmaker.kw["bind"].url, poolclass=NullPool, connect_args={"connect_timeout": 5}
        )
        self._connection: AsyncConnection | None = None
        """The ticks' own connection, outside the pool (no checkout or ping a tick); made again after a tick
        fails (its state is then unknown)."""
        self.interval_s = interval_s
        self._heartbeat_s = heartbeat_s
        self._max_pending_bytes = max_pending_bytes
        self._batch_rows = batch_rows
        self._waiting = 0
        """Measurements added since the last tick began."""
        self._oldest: float | None = None
        """When the oldest of them arrived (monotonic)."""
        self._full = asyncio.Event()
        """Set when `_waiting` reaches `batch_rows`."""
        self._sessions: dict[uuid.UUID, _Session] = {}
        self._lock = asyncio.Lock()
        """Held by a tick and by `finish`: a session's rows are in at most one transaction at a time."""
        self._order: EmotionOrder | None = None
        """The emotion order as of the last committed tick (positions once stored never change)."""
        self._task: asyncio.Task[None] | None = None
        self.totals = Tick()
        """Every tick's figures added up since the flusher was made."""

    def open(self, job_id: uuid.UUID, medium: str) -> None:
        """Flush this session from now on (its job and live_session row exist)."""
        self._sessions[job_id] = _Session(medium)

    def add(self, job_id: uuid.UUID, measurement_id: int, body: bytes, at_ms: int) -> bool:
        """Keep a measurement of an open session for the next tick; False (and not kept) when the session
        already holds PENDING_MAX_BYTES unstored. One arriving after its session's end was stored (a relay
        cancelled mid-read) has nowhere to go: dropped."""
        held = self._sessions.get(job_id)
        if held is None:
            return True
        if held.held + len(body) > self._max_pending_bytes:
            return False
        held.items.append((measurement_id, body, at_ms))
        held.held += len(body)
        if self._oldest is None:
            self._oldest = time.monotonic()
        self._waiting += 1
        if self._waiting >= self._batch_rows:
            self._full.set()
        return True

    def pending(self, job_id: uuid.UUID) -> int:
        """Measurements of the session not stored yet."""
        held = self._sessions.get(job_id)
        return 0 if held is None else len(held.items)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        """Stop ticking, then store what is still held (sessions the shutdown did not end)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if any(s.items for s in self._sessions.values()):
            await self.tick()
        await self._drop_connection()

    async def _connect(self) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self._engine.connect()
        return self._connection

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def backend_pid(self) -> int:
        """The Postgres backend of the ticks' connection (for bench live_ingest)."""
        connection = await self._connect()
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    async def _run(self) -> None:
        """A tick when `batch_rows` measurements wait or the oldest has waited `interval_s`, whichever comes
        first, and at least every `interval_s` (heartbeats); a failed tick's measurements wait `interval_s`
        again, not at once."""
        while True:
            started = time.monotonic()
            due = (self._oldest if self._oldest is not None else started) + self.interval_s
            if due > started and not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), due - started)
            try:
                await self.tick()
            except Exception:  # a tick keeps what it could not store; this loop must outlive any one of them
                log.exception("live sessions' flush failed")

    async def tick(self) -> Tick:
        """Store every open session's measurements received since the last tick, and the heartbeat of those
        with none for HEARTBEAT_S, in one transaction; what cannot be stored stays for the next tick."""
        async with self._lock:
            started, cpu = time.perf_counter(), time.process_time()
            self._full.clear()
            self._waiting, self._oldest = 0, None
            result = await self._tick()
            if result.failed and self._oldest is None:
                self._oldest = time.monotonic()
            result.seconds, result.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
            self.totals.add(result)
            return result

    async def _tick(self) -> Tick:
        now = time.monotonic()
        taken = [
            (job_id, held, held.items)
            for job_id, held in self._sessions.items()
            if held.items or (not held.ended and now - held.beaten >= self._heartbeat_s)
        ]
        if not taken:
            return Tick()
        for _, held, _ in taken:
            held.items = []
        result = Tick(sessions=len(taken))
        try:
            result.stored = await self._write(taken, now, result)
        except _UNREACHABLE as exc:
            self._order = None
            self._keep(taken)
            result.failed = len(taken)
            log.warning("live sessions' measurements not stored yet", sessions=len(taken), error=str(exc))
        except Exception as exc:
            self._order = None
            if len(taken) == 1:
                self._failed_alone(*taken[0], exc)
                result.failed = 1
            else:
                for one in taken:
                    try:
                        result.stored += await self._write([one], now, result)
                    except Exception as alone:
                        self._order = None
                        self._failed_alone(*one, alone)
                        result.failed += 1
        return result

    async def _write(
        self, taken: list[tuple[uuid.UUID, _Session, list[tuple[int, bytes, int]]]], now: float, result: Tick
    ) -> int:
        result.transactions += 1
        try:
            connection = await self._connect()
            if connection.in_transaction():
                await connection.rollback()
            async with AsyncSession(bind=connection) as session, session.begin():
                order = self._order or await load_emotion_order(session)
                self._order = None  # kept again only once the transaction that used it has committed
                batches = [held.batch(job_id, items) for job_id, held, items in taken]
                appended = {a.job_id: a for a in await live_sessions.append_many(session, batches, order)}
                beats = {j for j, held, _ in taken if not held.ended and now - held.beaten >= self._heartbeat_s}
                await live_sessions.advance(session, list(appended.values()), {}, beats)
        except BaseException:
            for _, held, _ in taken:
                held.known = None  # the commit's outcome may be unknown: the rows are read again
            await self._drop_connection()
            raise
        order.settle()
        self._order = order
        for job_id, held, items in taken:
            held.held -= sum(len(body) for _, body, _ in items)
            if job_id in beats:
                held.beaten = now
            done = appended.get(job_id)
            if done is not None:
                held.known = (done.last_id, done.source_id)
                held.stats.fold(done)
            if held.ended and not held.items:
                self._sessions.pop(job_id, None)
        return sum(a.count for a in appended.values())

    def _keep(self, taken: list[tuple[uuid.UUID, _Session, list[tuple[int, bytes, int]]]]) -> None:
        for _, held, items in taken:
            held.items = items + held.items

    def _failed_alone(
        self, job_id: uuid.UUID, held: _Session, items: list[tuple[int, bytes, int]], exc: Exception
    ) -> None:
        if isinstance(exc, PredictionFormatError):
            # Not in Hume's format: storing it again cannot help, so the batch is dropped.
            held.held -= sum(len(body) for _, body, _ in items)
            if held.ended and not held.items:
                self._sessions.pop(job_id, None)
            log.warning("live session measurements dropped: not in Hume's format", job_id=str(job_id), error=str(exc))
        else:
            self._keep([(job_id, held, items)])
            log.warning("live session measurements not stored yet", job_id=str(job_id), error=str(exc))

    async def finish(self, job_id: uuid.UUID, ending: Callable[[AsyncSession], Awaitable[object]]) -> int:
        """The session's last measurements and its stats stored and `ending(session)` (its job ended) in one
        transaction, after any tick holding its earlier ones has committed; the session is no longer flushed.
        Should that transaction fail, the measurements are kept and stored by the next ticks (the job, left
        live, is ended by the reconciler once its heartbeat is stale, its stats made from its rows); a
        PredictionFormatError drops them (the stats of what was stored are still written) and the caller ends
        the job saying so. Returns the rows stored."""
        async with self._lock:
            held = self._sessions.pop(job_id, None)
        if held is None:
            async with self._sessionmaker.begin() as session:
                await ending(session)
            return 0
        items, held.items = held.items, []
        try:
            async with self._sessionmaker.begin() as session:
                # The order is read in this transaction: the kept one is lent only to transactions that commit.
                appended = await live_sessions.append_many(session, [held.batch(job_id, items)])
                final = held.stats.plus(appended[0]) if appended else held.stats
                final.add_up()
                await live_sessions.advance(session, appended, {job_id: final} if final.changed else {})
                await ending(session)
        except PredictionFormatError:
            if held.stats.changed:
                held.stats.add_up()
                async with self._sessionmaker.begin() as session:
                    await live_sessions.advance(session, [], {job_id: held.stats})
            raise
        except BaseException:
            held.known = None
            held.items = items + held.items
            held.ended = True
            self._sessions[job_id] = held
            raise
        return appended[0].count if appended else 0
