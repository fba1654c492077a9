"""Outgoing POSTs (batch callbacks, EVI webhooks) with retries.

Hume never documented whether batch callbacks are retried; retrying on non-2xx and timeouts
with doubling backoff is our assumption, configurable through ``EmulatorConfig``.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import orjson

from .jobs import Job, now_ms
from .state import EmulatorState

log = logging.getLogger("app.emulator.callbacks")


async def post_with_retries(
    state: EmulatorState,
    kind: str,
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    ref: str = "",
) -> bool:
    """POST ``body`` until a 2xx or ``callback_max_attempts``; record every attempt."""
    cfg = state.config
    client = state.http
    if client is None:
        return False
    send_headers = {"content-type": "application/json", "user-agent": "hume-emulator"}
    send_headers.update(headers or {})
    delay = cfg.callback_backoff_s
    for attempt in range(1, max(1, cfg.callback_max_attempts) + 1):
        record: dict[str, object] = {
            "kind": kind,
            "ref": ref,
            "url": url,
            "attempt": attempt,
            "at_ms": now_ms(),
        }
        try:
            resp = await client.post(url, content=body, headers=send_headers, timeout=cfg.callback_timeout_s)
            record["status_code"] = resp.status_code
            ok = 200 <= resp.status_code < 300
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            ok = False
        record["ok"] = ok
        state.deliveries.append(record)
        if ok:
            return True
        log.info("%s to %s failed (attempt %d): %s", kind, url, attempt, record)
        if attempt < cfg.callback_max_attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return False


def callback_body(job: Job) -> bytes:
    """Hume's documented callback: job id, status and the predictions (or the error message)."""
    if job.status == "COMPLETED" and job.predictions is not None:
        head = orjson.dumps({"job_id": job.job_id, "status": job.status})
        return head[:-1] + b',"predictions":' + job.predictions + b"}"
    return orjson.dumps({"job_id": job.job_id, "status": "FAILED", "message": job.message or "Job failed"})


async def send_job_callback(state: EmulatorState, job: Job) -> None:
    url = job.request.get("callback_url")
    if not url:
        return
    if job.drop_callback:
        state.deliveries.append(
            {"kind": "batch_callback", "ref": job.job_id, "url": url, "dropped": True, "at_ms": now_ms()}
        )
        return
    body = callback_body(job)
    await post_with_retries(state, "batch_callback", url, body, ref=job.job_id)
    if job.duplicate_callback:
        await post_with_retries(state, "batch_callback", url, body, ref=job.job_id)
