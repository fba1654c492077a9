"""The queue's one retry policy: exponential backoff with a cap, a Retry-After from Hume winning when it asks
for longer. procrastinate applies it to a failed task; the event runner asks it for the wait of an event it
hands on to a task of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from procrastinate import RetryDecision
from procrastinate.jobs import Job as QueueJob
from procrastinate.retry import BaseRetryStrategy

from app.config import Settings
from app.hume.errors import HumeTransientError


class Backoff(BaseRetryStrategy):
    """Exponential backoff with a cap; a Retry-After from Hume wins when it asks for longer."""

    def __init__(self, *, max_attempts: int, base_s: float, cap_s: float) -> None:
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.cap_s = cap_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        """WORKER_MAX_ATTEMPTS, WORKER_RETRY_BASE_S and WORKER_RETRY_CAP_S."""
        return cls(
            max_attempts=settings.worker_max_attempts,
            base_s=settings.worker_retry_base_s,
            cap_s=settings.worker_retry_cap_s,
        )

    def wait_s(self, attempts: int, exception: BaseException) -> float:
        wait = min(self.base_s * float(2**attempts), self.cap_s)
        if isinstance(exception, HumeTransientError) and exception.retry_after is not None:
            wait = max(wait, min(exception.retry_after, self.cap_s))
        return wait

    def get_retry_decision(self, *, exception: BaseException, job: QueueJob) -> RetryDecision | None:
        if job.attempts + 1 >= self.max_attempts:
            return None
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=self.wait_s(job.attempts, exception)))
