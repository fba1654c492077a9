"""Everything one emulator instance remembers, in memory."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .config import EmulatorConfig
from .faults import Faults
from .origins import Origin
from .rate_limit import RequestLog
from .records import Chat, DecisionRun, Run

if TYPE_CHECKING:
    from .jobs import Job


class LiveSession(Protocol):
    """A realtime session connected now (realtime_session.RealtimeSession), as the control route ends it: the
    session holds the state and the state the session, so the state names only what it needs of one."""

    run: Run

    @property
    def endpoint(self) -> str: ...

    async def end_by_server(self, error: str | None) -> None: ...


@dataclass
class EmulatorState:
    config: EmulatorConfig
    jobs: dict[str, Job] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    faults: Faults = field(default_factory=Faults)
    # Every outgoing callback/webhook attempt, for tests and developers to inspect.
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    chats: dict[str, Chat] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (epoch s)
    token_owners: dict[str, str] = field(default_factory=dict)  # access token -> the API key it was issued for
    requests: RequestLog = field(default_factory=RequestLog)  # per-organization rate limit window (rate_limit.py)
    tts_generations: set[str] = field(default_factory=set)  # ids usable as TTS context
    runs: dict[str, Run] = field(default_factory=dict)  # v1 expression measurement runs
    decision_runs: dict[str, DecisionRun] = field(default_factory=dict)  # Audio Decisions runs (decisions.py)
    sessions: dict[str, LiveSession] = field(default_factory=dict)  # v1 realtime sessions connected now
    # Signs v1 face_state tokens; per instance, so a state from another emulator is ignored.
    face_state_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    http: httpx.AsyncClient | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Local (address, port) -> the Hume host served there (origins.py); a socket not listed serves both.
    origins: dict[tuple[str, int], Origin] = field(default_factory=dict)

    def spawn(self, coro: Any) -> None:
        """Run a background coroutine, keeping a reference so it is not garbage-collected."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def reset(self) -> None:
        """Forget jobs, chats, runs, calls, deliveries, rate windows and faults (tokens stay valid, as real ones do)."""
        self.cancel_tasks()
        with self.lock:
            self.jobs.clear()
            self.calls.clear()
            self.deliveries.clear()
            self.chats.clear()
            self.runs.clear()
            self.decision_runs.clear()
        self.requests.clear()
        self.faults.apply({"clear": True})
        self.faults.sunset_status = self.config.sunset_status
