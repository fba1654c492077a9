"""A job's statuses, written once: the database's CHECK constraint, the store's forward-only rule, the API's
schemas and the dashboard's filters all read them from here."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    """Stored; its start is queued."""
    QUEUED = "queued"
    """Hume accepted it (batch); waiting for the outcome."""
    IN_PROGRESS = "in_progress"
    LIVE = "live"
    """A live session (kind `session`): its relay is open and its measurements are stored as they arrive."""
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    """Hume (or our checks before calling it) refused it: resubmitting the same request will not help."""


FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.REJECTED})
ACTIVE = tuple(status for status in JobStatus if status not in FINAL)
# A job only moves forward: late or replayed events can never move it back.
RANK = {
    JobStatus.PENDING: 0, JobStatus.QUEUED: 1, JobStatus.IN_PROGRESS: 2, JobStatus.LIVE: 2, **dict.fromkeys(FINAL, 3)
}  # fmt: skip
NAMES = tuple(status.value for status in JobStatus)
