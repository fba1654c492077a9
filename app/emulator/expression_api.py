"""v1 file endpoints: ``POST /v1/expression/audio/file`` and ``/v1/expression/video/file``.

Answers synchronously, as Hume does (no jobs, no callbacks). A request becomes a run once its media reaches
measurement (HUME-V1-FACTS §6, RUNS): audio once it decodes, images once every one passed the checks. A
request refused before that (body too large, unreadable multipart, bad config, undecodable or unsupported
media) leaves no run; a failure after it leaves an `errored` run. Limits are measured on the bytes received.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import expression_audio, expression_faces
from .expression_config import audio_settings, video_settings
from .expression_errors import ExpressionError, error_body, new_request_id
from .expression_images import check_jpeg, parse_jpeg
from .expression_runs import record, user_id
from .records import Run
from .responses import emu, json

# HUME-V1-FACTS §4: 25 MB for the whole multipart body ("a little over 13 minutes" of 16 kHz s16le: decimal MB).
MAX_BODY_BYTES = 25_000_000
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
        raise ExpressionError("message_invalid", "The multipart body could not be read: it is not multipart/form-data.")
    parts: list[Part] = []
    # A delimiter is CRLF "--" boundary; the body's first one has no CRLF before it.
    for section in (b"\r\n" + body).split(b"\r\n--" + match.group(1).encode("latin-1"))[1:]:
        if section.startswith(b"--"):
            return parts
        head, sep, data = section.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if not sep or name is None:
            raise ExpressionError("message_invalid", "The multipart body could not be read: a part has no name.")
        parts.append(Part(name.group(1).decode("latin-1"), data))
    raise ExpressionError("message_invalid", "The multipart body could not be read: it is truncated.")


def _config_part(parts: list[Part]) -> bytes | None:
    raw = [p.data for p in parts if p.name == "config"]
    if len(raw) > 1:
        raise ExpressionError("message_invalid", "The multipart body could not be read: more than one config part.")
    return raw[0] if raw else None


def _refuse(exc: ExpressionError, request_id: str) -> Response:
    return json(error_body(exc.code, exc.message, request_id), status_code=exc.status)


async def audio_file(request: Request) -> Response:
    request_id = new_request_id()
    try:
        body = await _read_body(request, "audio_too_long")
        parts = _parts(request, body)
        settings = audio_settings(_config_part(parts))
        files = [p for p in parts if p.name == "file"]
        if len(files) != 1:
            raise ExpressionError("message_invalid", f"Send exactly one file part; this request has {len(files)}.")
        audio = expression_audio.decode(files[0].data)
    except ExpressionError as exc:
        return _refuse(exc, request_id)
    run = Run("audio", user_id(request), settings.run_config(expression_audio.RATE))
    record(request, run)
    try:
        utterances, measurements = await asyncio.to_thread(
            expression_audio.measure, audio, settings.measurement_timer_ms
        )
    except ExpressionError as exc:
        run.end(ok=False, bytes_received=len(audio.pcm), media_seconds=0)
        return _refuse(exc, request_id)
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
    try:
        # HUME-V1-FACTS §4: 25 MB per request for images too; over it is image_too_large (inferred code).
        body = await _read_body(request, "image_too_large")
        parts = _parts(request, body)
        settings = video_settings(_config_part(parts))
        files = [p.data for p in parts if p.name == "file"]
        if not files:
            raise ExpressionError("message_invalid", "Send at least one file part.")
        for data in files:  # every image is checked before any is measured
            check_jpeg(data)
    except ExpressionError as exc:
        return _refuse(exc, request_id)
    run = Run("video", user_id(request), settings.run_config())
    record(request, run)
    received = sum(len(data) for data in files)
    key = emu(request).face_state_key
    tracker = expression_faces.Tracker.from_token(settings.face_state, key)
    measurements: list[dict[str, Any]] = []
    try:
        for frame_id, data in enumerate(files):
            image = parse_jpeg(data)  # decoding fails here, possibly after earlier images were measured (§4)
            measurements.append(
                expression_faces.measure_image(image, frame_id, tracker, settings.threshold, settings.min_size)
            )
    except ExpressionError as exc:
        run.end(ok=False, bytes_received=received, media_seconds=0)
        return _refuse(exc, request_id)
    run.end(ok=True, bytes_received=received, media_seconds=len(files) / 3)  # §6: 1/3 s per image
    response: dict[str, Any] = {
        "request_id": request_id,
        "run_id": run.run_id,
        "received": {"frames": len(files)},
        "measurements": measurements,
    }
    if settings.return_face_state:
        response["face_state"] = tracker.to_token(key)
    return json(response)


routes = [
    Route("/v1/expression/audio/file", audio_file, methods=["POST"]),
    Route("/v1/expression/video/file", video_file, methods=["POST"]),
]
