"""The emulator's records of chats and v1 runs, which its state holds and its endpoints serve."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]
_RUN_SEQ = itertools.count()
MIN_METERED_S = 10.0  # HUME-V1-FACTS §6: "minimum 10 s per run that took media"


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

    def end(self, ok: bool, bytes_received: int, media_seconds: float) -> None:
        """`media_seconds`: audio seconds taken in, or 1/3 s per image (HUME-V1-FACTS §6 billing)."""
        self.status = "ended" if ok else "errored"
        self.ended_at = datetime.now(UTC)
        self.bytes_received = bytes_received
        # §6 billing: at least MIN_METERED_S for a run that took media; "a file request that fails is not
        # billed, and a run recorded for it reports 0" (SDK run.py).
        self.metered_seconds = round(max(MIN_METERED_S, media_seconds), 3) if ok and media_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "user_id": self.user_id,
            "status": self.status,
            "endpoint": self.endpoint,
            "mode": "file",
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at) if self.ended_at else None,
            "bytes_received": self.bytes_received,
            "bytes_recorded": None,
            "metered_seconds": self.metered_seconds,
        }

    def full(self) -> dict[str, Any]:
        return {**self.summary(), "config": self.config}
