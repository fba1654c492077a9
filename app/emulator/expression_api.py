"""v1 file endpoints: ``POST /v1/expression/audio/file`` and ``/v1/expression/video/file``.

Answers synchronously, as Hume does (no jobs, no callbacks); every request is recorded as a run.
Limits are measured on the bytes received: the whole body (``MAX_BODY_BYTES``), each image.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import expression_audio, expression_faces
from .expression_errors import ExpressionError, error_body, new_request_id
from .expression_images import parse_jpeg
from .expression_runs import record, user_id
from .records import Run
from .responses import emu, json

# "25MB, the whole multipart body": decimal megabytes assumed (Hume writes MiB where it means them).
MAX_BODY_BYTES = 25_000_000
TIMER_RANGE_MS = (100, 10_000)  # 10 s is Hume's maximum; the minimum is our assumption
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes


async def _read_body(request: Request, too_long_code: str) -> bytes:
    """The body, or ``too_long_code`` once it passes the limit (the rest is drained, not kept)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total <= MAX_BODY_BYTES:
            chunks.append(chunk)
        else:
            chunks.clear()
    if total > MAX_BODY_BYTES:
        raise ExpressionError(too_long_code, f"The request is {total} bytes; the limit is {MAX_BODY_BYTES}.")
    return b"".join(chunks)


def _parts(request: Request, body: bytes) -> list[Part]:
    content_type = request.headers.get("content-type", "")
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ExpressionError("invalid_request", "The body must be multipart/form-data.")
    parts: list[Part] = []
    # A delimiter is CRLF "--" boundary; the body's first one has no CRLF before it.
    for section in (b"\r\n" + body).split(b"\r\n--" + match.group(1).encode("latin-1"))[1:]:
        if section.startswith(b"--"):
            return parts
        head, sep, data = section.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if not sep or name is None:
            raise ExpressionError("invalid_request", "A multipart part has no headers or no name.")
        parts.append(Part(name.group(1).decode("latin-1"), data))
    raise ExpressionError("invalid_request", "The multipart body is truncated.")


def _config(parts: list[Part]) -> dict[str, Any]:
    raw = [p.data for p in parts if p.name == "config"]
    if not raw:
        return {}
    if len(raw) > 1:
        raise ExpressionError("config_invalid", "Send at most one config part.")
    try:
        config = orjson.loads(raw[0])
    except orjson.JSONDecodeError as exc:
        raise ExpressionError("config_invalid", "The config part is not JSON.") from exc
    if not isinstance(config, dict):
        raise ExpressionError("config_invalid", "The config part must be a JSON object.")
    return config


def _number(config: dict[str, Any], key: str, integer: bool, low: float, high: float, default: float) -> Any:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ExpressionError("config_invalid", f"{key} must be {'an integer' if integer else 'a number'}.")
    if not low <= value <= high:
        raise ExpressionError("config_invalid", f"{key} must be from {low:g} to {high:g}.")
    return value


def _fail(run: Run, exc: ExpressionError, request_id: str, received: int) -> Response:
    run.end(ok=False, bytes_received=received, media_seconds=0)
    return json(error_body(exc.code, exc.message, request_id), status_code=exc.status)


async def audio_file(request: Request) -> Response:
    request_id = new_request_id()
    run = Run(endpoint="audio", user_id=user_id(request))
    record(request, run)
    received = 0
    try:
        body = await _read_body(request, "audio_too_long")
        received = len(body)
        parts = _parts(request, body)
        config = _config(parts)
        timer = _number(config, "measurement_timer_ms", True, *TIMER_RANGE_MS, expression_audio.DEFAULT_TIMER_MS)
        files = [p for p in parts if p.name == "file"]
        if len(files) != 1:
            raise ExpressionError("invalid_request", "Send exactly one file part.")
        run.config = {
            "schema": "v4",
            "audio": {"type": "audio/pcm", "encoding": "s16le", "sample_rate": expression_audio.RATE, "channels": 1},
            "measurement_timer_ms": timer,
        }
        audio = expression_audio.decode(files[0].data)
        utterances, measurements = await asyncio.to_thread(expression_audio.measure, audio, timer)
    except ExpressionError as exc:
        return _fail(run, exc, request_id, received)
    run.end(ok=True, bytes_received=len(audio.pcm), media_seconds=audio.duration_ms / 1000)
    return json(
        {
            "request_id": request_id,
            "run_id": run.run_id,
            "received": {"audio_duration_ms": audio.duration_ms},
            "utterances": utterances,
            "measurements": measurements,
        }
    )


async def video_file(request: Request) -> Response:
    request_id = new_request_id()
    run = Run(endpoint="video", user_id=user_id(request))
    record(request, run)
    received = 0
    try:
        body = await _read_body(request, "image_too_large")
        received = len(body)
        parts = _parts(request, body)
        config = _config(parts)
        face = config.get("face") or {}
        if not isinstance(face, dict):
            raise ExpressionError("config_invalid", "face must be a JSON object.")
        threshold = _number(face, "threshold", False, 0.0, 1.0, expression_faces.DEFAULT_THRESHOLD)
        min_size = _number(face, "min_size", True, 0, 10_000, expression_faces.DEFAULT_MIN_SIZE)
        return_state, state_in = face.get("return_face_state", False), config.get("face_state")
        if not isinstance(return_state, bool) or not isinstance(state_in, str | None):
            raise ExpressionError("config_invalid", "return_face_state must be a boolean and face_state a string.")
        run.config = {"schema": "v4", "image": {"type": "image/jpeg"},
                      "face": {"threshold": round(float(threshold), 4), "min_size": min_size}}  # fmt: skip
        files = [p for p in parts if p.name == "file"]
        if not files:
            raise ExpressionError("invalid_request", "Send at least one file part.")
        images = [parse_jpeg(p.data) for p in files]  # every image is checked before any is measured
    except ExpressionError as exc:
        return _fail(run, exc, request_id, received)
    key = emu(request).face_state_key
    tracker = expression_faces.Tracker.from_token(state_in, key)
    measurements = [
        expression_faces.measure_image(image, frame_id, tracker, threshold, min_size)
        for frame_id, image in enumerate(images)
    ]
    run.end(ok=True, bytes_received=sum(len(p.data) for p in files), media_seconds=len(images) / 3)
    response: dict[str, Any] = {
        "request_id": request_id,
        "run_id": run.run_id,
        "received": {"frames": len(images)},
        "measurements": measurements,
    }
    if return_state:
        response["face_state"] = tracker.to_token(key)
    return json(response)


routes = [
    Route("/v1/expression/audio/file", audio_file, methods=["POST"]),
    Route("/v1/expression/video/file", video_file, methods=["POST"]),
]
