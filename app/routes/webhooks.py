"""Hume's callbacks. Verified before parsing; stored and enqueued in one transaction; acknowledged fast.

Every delivery leaves one log line and one metrics sample: kind, outcome (accepted, duplicate, rejected,
unavailable) and the ids it named, so a lost or forged callback can be traced from the logs alone.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import jobs, metrics
from app.errors import AppError
from app.http import JSON, deps, read_body
from app.hume.callbacks import CallbackFormatError

log = structlog.get_logger(__name__)

# Headers worth keeping with an event for audit; never Authorization or cookies.
_KEPT_HEADERS = ("content-type", "user-agent", "x-hume-ai-webhook-timestamp", "x-hume-ai-webhook-signature")


def kept_headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}


async def hume_batch(request: Request) -> Response:
    d = deps(request)
    job_id = request.query_params.get("job_id")
    try:
        body = await read_body(request, d.settings.max_webhook_body_bytes)
        accepted = await jobs.accept_batch_callback(
            d, job_id=job_id, token=request.query_params.get("token"), body=body, headers=kept_headers(request)
        )
    except (AppError, CallbackFormatError) as exc:
        status = exc.status if isinstance(exc, AppError) else 400
        outcome = "rejected" if status < 500 else "unavailable"
        metrics.WEBHOOKS.labels("batch", outcome).inc()
        log.warning("webhook", kind="batch", outcome=outcome, status=status, job_id=job_id, reason=str(exc))
        raise
    except Exception as exc:  # the database is down (503) or a bug (500): either way the sender retries
        metrics.WEBHOOKS.labels("batch", "unavailable").inc()
        log.warning("webhook", kind="batch", outcome="unavailable", job_id=job_id, reason=type(exc).__name__)
        raise
    outcome = "duplicate" if accepted.duplicate else "accepted"
    metrics.WEBHOOKS.labels("batch", outcome).inc()
    log.info(
        "webhook", kind="batch", outcome=outcome, job_id=job_id, hume_job_id=accepted.hume_job_id,
        status=accepted.status, event_id=accepted.event_id, bytes=len(body),
    )  # fmt: skip
    if accepted.duplicate:
        return JSON({"status": "duplicate"}, status_code=200)
    return JSON({"status": "accepted", "event_id": accepted.event_id}, status_code=202)


routes = [Route("/v1/webhooks/hume/batch", hume_batch, methods=["POST"])]
