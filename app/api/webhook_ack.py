"""The answer to a webhook delivery, the same for every provider: 202 with the event id when stored, 200
for a duplicate, the error's status otherwise (503 makes the sender retry); each delivery counted once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from app.api.responses import JSON
from app.errors import AppError
from app.inbox.acceptance import Accepted, record_delivery


async def acknowledge(kind: str, accept: Callable[[], Awaitable[Accepted]], **log_fields: Any) -> Response:
    try:
        accepted = await accept()
    except AppError as exc:
        outcome = "rejected" if exc.status < 500 else "unavailable"
        record_delivery(kind, outcome, status=exc.status, reason=exc.message, **log_fields)
        # A refused sender may not have sent (or we not read) its whole body: end the connection rather
        # than read on to find where the next request starts.
        exc.headers.setdefault("Connection", "close")
        raise
    except Exception as exc:  # the database is down (503) or a bug (500): either way the sender retries
        record_delivery(kind, "unavailable", reason=type(exc).__name__, **log_fields)
        raise
    if accepted.duplicate:
        record_delivery(kind, "duplicate", **log_fields, **accepted.log_fields)
        return JSON({"status": "duplicate"}, status_code=200)
    record_delivery(kind, "accepted", event_id=accepted.event_id, **log_fields, **accepted.log_fields)
    return JSON({"status": "accepted", "event_id": accepted.event_id}, status_code=202)
