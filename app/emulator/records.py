"""The emulator's records of chats, v1 runs and Audio Decisions runs, which its state holds and its endpoints
serve."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.hume import decisions_contract as hume

Json = dict[str, Any]
_RUN_SEQ = itertools.count()
MIN_METERED_S = 10.0  # HUME-V1-FACTS §6: "minimum 10 s per run that took media"
# HUME-V1-FACTS §6: "A live run unheard for 5 minutes reads errored, and reads live again if it resumes".
UNHEARD_S = 300.0
# HUME-V1-FACTS §8: per-kind event logging is capped (the page's at_cap/capped_kinds); the cap is undocumented,
# this one is the emulator's choice, small enough that a flood of bad frames cannot grow a run without bound.
EVENTS_PER_KIND = 1000


def _to_ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Chat:
    id: str
    chat_group_id: str
    start_timestamp: int
    config_id: str | None = None
    custom_session_id: str | None = None
    end_timestamp: int | None = None
    status: str = "ACTIVE"
    events: list[Json] = field(default_factory=list)
    resumed: bool = False
    # The webhook URL given at creation: ending an active chat later must notify the same receiver.
    webhook_url: str | None = None

    def summary(self) -> Json:
        return {
            "id": self.id,
            "chat_group_id": self.chat_group_id,
            "status": self.status,
            "start_timestamp": self.start_timestamp,
            "end_timestamp": self.end_timestamp,
            "event_count": len(self.events),
            "metadata": None,
            "config": {"id": self.config_id, "version": 0} if self.config_id else None,
        }


@dataclass
class Run:
    """A v1 file request that reached measurement (HUME-V1-FACTS §6, RUNS: "an upload becomes a run once its
    audio reaches measurement (images: the checks); later failures give errored, earlier rejections no run"),
    so it always has the config it ran under."""

    endpoint: str  # audio | video
    user_id: str
    config: dict[str, Any]
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "live"
    # Kept at the millisecond it is reported in, so a client's started_before/started_after of a reported time
    # excludes/includes exactly that run.
    started_at: datetime = field(default_factory=lambda: _to_ms(datetime.now(UTC)))
    ended_at: datetime | None = None
    bytes_received: int | None = None
    metered_seconds: float = 0.0
    # Creation order, which breaks ties between runs started in the same millisecond ("newest first").
    seq: int = field(default_factory=lambda: next(_RUN_SEQ))
    mode: str = "file"  # file | realtime (HUME-V1-FACTS §2 filters, §8)
    # Realtime only (HUME-V1-FACTS §6): the WebSocket close code (1011 when the connection was lost) and why.
    close_code: int | None = None
    close_reason: str | None = None
    # Realtime only: when the server last heard from the session (time.monotonic()), for the 5-minute rule.
    heard_at: float = field(default_factory=time.monotonic)
    # Realtime only (HUME-V1-FACTS §8: "Only realtime runs record events").
    events: list[Json] = field(default_factory=list)
    event_counts: Counter[str] = field(default_factory=Counter)

    def end(self, ok: bool, bytes_received: int, media_seconds: float) -> None:
        """`media_seconds`: audio seconds taken in, or 1/3 s per image (HUME-V1-FACTS §6 billing)."""
        self.status = "ended" if ok else "errored"
        self.ended_at = datetime.now(UTC)
        self.bytes_received = bytes_received
        # §6 billing: at least MIN_METERED_S for a run that took media; "a file request that fails is not
        # billed, and a run recorded for it reports 0" (SDK run.py).
        self.metered_seconds = round(max(MIN_METERED_S, media_seconds), 3) if ok and media_seconds > 0 else 0.0

    def finish_session(self, ok: bool, close_code: int | None, close_reason: str | None, bytes_received: int) -> None:
        """The end of a realtime session. Billing (HUME-V1-FACTS §6): what was metered while live stays (a session
        is billed for what it took in even when it ends in an error), raised to MIN_METERED_S, "applied at end",
        if it took any media."""
        self.status = "ended" if ok else "errored"
        self.ended_at = datetime.now(UTC)
        self.close_code, self.close_reason = close_code, close_reason
        self.bytes_received = bytes_received
        if self.metered_seconds > 0:
            self.metered_seconds = round(max(MIN_METERED_S, self.metered_seconds), 3)

    def record_event(self, kind: str, detail: Json | None) -> None:
        """One entry of a realtime run's event log (HUME-V1-FACTS §8: `{seq, at, kind, detail?}`, capped per kind)."""
        self.event_counts[kind] += 1
        if self.event_counts[kind] > EVENTS_PER_KIND:
            return
        event: Json = {"seq": len(self.events) + 1, "at": iso(datetime.now(UTC)), "kind": kind}
        if detail is not None:
            event["detail"] = detail
        self.events.append(event)

    def capped_kinds(self) -> list[str]:
        return sorted(kind for kind, count in self.event_counts.items() if count > EVENTS_PER_KIND)

    def _status(self) -> tuple[str, datetime | None]:
        """A live session unheard for UNHEARD_S reads errored, ended at the last time it was heard (§6)."""
        quiet = time.monotonic() - self.heard_at
        if self.status == "live" and self.mode == "realtime" and quiet >= UNHEARD_S:
            return "errored", datetime.now(UTC) - timedelta(seconds=quiet)
        return self.status, self.ended_at

    def summary(self) -> dict[str, Any]:
        status, ended_at = self._status()
        return {
            "run_id": self.run_id,
            "user_id": self.user_id,
            "status": status,
            "endpoint": self.endpoint,
            "mode": self.mode,
            "started_at": iso(self.started_at),
            "ended_at": iso(ended_at) if ended_at else None,
            "bytes_received": self.bytes_received,
            "bytes_recorded": None,
            "metered_seconds": round(self.metered_seconds, 3),
        }

    def full(self) -> dict[str, Any]:
        full = {**self.summary(), "config": self.config}
        # SDK run.py: "Only realtime runs that have ended have one", absent otherwise.
        if self.close_code is not None:
            full["close_code"] = self.close_code
        if self.close_reason is not None:
            full["close_reason"] = self.close_reason
        return full


@dataclass
class DecisionRun:
    run_id: str
    owner: str
    user_id: str
    request: dict[str, Any]
    file_size_bytes: int
    input_tokens: int
    visible_at: float
    """time.monotonic() from which the runs endpoints show it."""
    status: str = "ended"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def view(self) -> dict[str, Any]:
        """R/runs/get.md: run_id, user_id, status, started_at, ended_at, received, request; no answers."""
        return {
            "run_id": self.run_id, "user_id": self.user_id, "status": self.status,
            "started_at": iso(self.started_at), "ended_at": iso(self.ended_at),
            # D/runs: the file part received and the input tokens billed; the size's key is ASSUMED.
            "received": {"file_size_bytes": self.file_size_bytes, hume.INPUT_TOKENS_KEY: self.input_tokens},
            "request": self.request,
        }  # fmt: skip
