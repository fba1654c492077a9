"""Hume's Audio Decisions API on the cloud origin: `POST /v0/decisions/file`, `POST /v0/decisions/file/
input_tokens`, `GET /v0/decisions/run` and `GET /v0/decisions/run/{run_id}` (AUDIO-DECISIONS-FACTS).

Checks run in this order: the body's size (25,000,000 bytes, `payload_too_large`), the multipart parts
(`request` then one `file`), the request (decisions_request.py), then the audio (MP3 or WAV by content,
1 s to 5 min). The gateway's 401 and 429 and the account's 402/403 come before all of these (auth.py,
server.py). Answers: decisions_audio.py. A request that reaches the model becomes a run (D/runs), visible
after `decisions_run_delay_s` (get answers 404 and list omits it until then), scoped to the organization
(the API key); runs carry no answers (R/runs/get.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.hume import decisions_contract as hume

from . import decisions_audio, decisions_request
from .decisions_errors import NOT_FOUND, Refusal, refusal_body, request_id
from .expression_runs import user_id
from .records import DecisionRun
from .responses import emu, json


def _owner(request: Request) -> str:
    return request.headers.get(hume.API_KEY_HEADER.lower(), "")


def _refuse(refusal: Refusal, rid: str | None = None) -> Response:
    return json(refusal_body(refusal, rid), status_code=refusal.status)


async def _body(request: Request) -> bytes:
    """The body, or payload_too_large past 25,000,000 bytes, request and file parts together
    (D/limits-and-errors); the rest is drained, not kept."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total <= hume.MAX_REQUEST_BYTES:
            chunks.append(chunk)
        else:
            chunks.clear()
    if total > hume.MAX_REQUEST_BYTES:
        raise Refusal(hume.PAYLOAD_TOO_LARGE, f"The request is {total} bytes; the limit is {hume.MAX_REQUEST_BYTES} "
                      "bytes for the request and file parts together.")  # fmt: skip
    return b"".join(chunks)


def _audio(data: bytes) -> decisions_audio.Features:
    samples = decisions_audio.decode(data)
    length = decisions_audio.duration_ms(samples)
    if length < hume.MIN_AUDIO_MS:  # C/2026/11/7: from 1 second
        raise Refusal(hume.AUDIO_TOO_SHORT, f"The audio is {length} ms long; send at least {hume.MIN_AUDIO_MS} ms.",
                      hume.FILE_PART)  # fmt: skip
    if length > hume.MAX_AUDIO_MS:  # D/limits-and-errors: up to 5 minutes
        raise Refusal(hume.AUDIO_TOO_LONG, f"The audio is {length} ms long; send at most {hume.MAX_AUDIO_MS} ms.",
                      hume.FILE_PART)  # fmt: skip
    return decisions_audio.features(samples)


async def decide(request: Request) -> Response:
    rid = request_id()
    try:
        body = await _body(request)
        parts = decisions_request.parts(request.headers.get("content-type", ""), body)
        raw, file = decisions_request.request_and_file(parts)
        questions, context = decisions_request.questions_and_context(raw, hume.REQUEST_PART)
        features = await asyncio.to_thread(_audio, file.data)
    except Refusal as exc:
        return _refuse(exc, rid)
    tokens = decisions_audio.input_tokens(features.duration_ms, questions, context)
    state = emu(request)
    run = DecisionRun(
        run_id=str(uuid.uuid4()), owner=_owner(request), user_id=user_id(request), request=raw,
        file_size_bytes=len(file.data), input_tokens=tokens,
        visible_at=time.monotonic() + state.config.decisions_run_delay_s,
    )  # fmt: skip
    with state.lock:
        state.decision_runs[run.run_id] = run
    return json({
        hume.RUN_ID_KEY: run.run_id,
        hume.ANSWERS_KEY: decisions_audio.answers(questions, context, features),
        hume.RECEIVED_KEY: {hume.INPUT_TOKENS_KEY: tokens},  # D/billing
    })  # fmt: skip


async def estimate(request: Request) -> Response:
    """R/decisions/input-tokens.md: free, no run."""
    try:
        duration, questions, context = decisions_request.token_request(await request.body())
    except Refusal as exc:
        return _refuse(exc)
    return json({hume.INPUT_TOKENS_KEY: decisions_audio.input_tokens(duration, questions, context)})


def _visible(request: Request) -> list[DecisionRun]:
    state, owner, now = emu(request), _owner(request), time.monotonic()
    with state.lock:
        runs = [r for r in state.decision_runs.values() if r.owner == owner and r.visible_at <= now]
    return sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)  # newest first (R/runs/list.md)


def _time(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:  # RFC 3339 needs an offset
        raise Refusal(hume.MESSAGE_INVALID, f"{name} must be an RFC 3339 date-time.", name)  # ASSUMED code
    return when


async def list_runs(request: Request) -> Response:
    """R/runs/list.md: page_size 1-200 (default 50), cursor, user_id, status, started_before (exclusive) and
    started_after (inclusive)."""
    q = request.query_params
    try:
        raw_size = q.get("page_size", str(hume.RUNS_PAGE_SIZE_DEFAULT))
        if (
            not raw_size.isascii()
            or not raw_size.isdigit()
            or not (hume.RUNS_PAGE_SIZE_MIN <= int(raw_size) <= hume.RUNS_PAGE_SIZE_MAX)
        ):
            raise Refusal(hume.MESSAGE_INVALID, f"page_size must be an integer from {hume.RUNS_PAGE_SIZE_MIN} to "
                          f"{hume.RUNS_PAGE_SIZE_MAX}.", "page_size")  # ASSUMED code  # fmt: skip
        status = q.get("status")
        if status is not None and status not in hume.RUN_STATUSES:
            raise Refusal(hume.MESSAGE_INVALID, f"status must be one of {', '.join(hume.RUN_STATUSES)}.", "status")
        before, after = _time(q.get("started_before"), "started_before"), _time(q.get("started_after"), "started_after")
    except Refusal as exc:
        return _refuse(exc)
    runs = [
        r for r in _visible(request)
        if (status is None or r.status == status) and (q.get("user_id") is None or r.user_id == q["user_id"])
        and (before is None or r.started_at < before) and (after is None or r.started_at >= after)
    ]  # fmt: skip
    cursor = q.get("cursor")
    if cursor is not None:
        index = next((i for i, r in enumerate(runs) if r.run_id == cursor), None)
        if index is None:
            return _refuse(Refusal(hume.MESSAGE_INVALID, "cursor is not a next_cursor of these filters.", "cursor"))
        runs = runs[index + 1 :]
    size = int(raw_size)
    page = runs[:size]
    body: dict[str, Any] = {"runs": [r.view() for r in page]}
    if len(runs) > size:
        body["next_cursor"] = page[-1].run_id
    return json(body)


async def get_run(request: Request) -> Response:
    """R/runs/get.md: an ID that is not a UUID returns 404, as an unknown one does (and, D/runs, a run not yet
    recorded, or another organization's)."""
    wanted = request.path_params["run_id"]
    run = next((r for r in _visible(request) if r.run_id == wanted), None)
    if run is None:
        return _refuse(Refusal(NOT_FOUND, "No run with this ID.", "run_id", status=404))
    return json(run.view())


routes = [
    Route(hume.DECISIONS_PATH, decide, methods=["POST"]),
    Route(hume.INPUT_TOKENS_PATH, estimate, methods=["POST"]),
    Route(hume.RUNS_PATH, list_runs, methods=["GET"]),
    Route(hume.RUNS_PATH + "/{run_id}", get_run, methods=["GET"]),
]
