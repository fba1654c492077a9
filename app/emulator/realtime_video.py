"""``WSS /v1/expression/video/realtime``: one JPEG per binary frame, exactly one reply per frame, in order.

A frame is checked in this order (HUME-V1-FACTS §4, §6, §8; the SDK's connect() docstring): over 2,000,000
bytes ends the session (`message_too_large`); past the send rate of 3 frames per second it gets `rate_limited`
and is not taken in; otherwise it is taken in (bytes and 1/3 s billed, "including a realtime frame rejected as
invalid after it passed the send-rate check"); empty, not a JPEG, over the pixel limit or not decodable gets
`invalid_image_frame`; otherwise it is accepted for measurement (`received.frames`) and answered with
`measurement.result {frame_id, faces}` (faces as an upload measures them, expression_faces.py; `frame_id`
counts results only) or, when its measurement fails, `internal_error`.

The emulator's measurement fails for a JPEG whose comment holds the word `fail` (as `faces=N` places faces,
expression_images.py), retryable true ("temporary, worth resending", §5); the fifth failure in a row ends the
session. Only a result breaks a run of failures (the docs say "in a row" of measurement failures only).
"""

from __future__ import annotations

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from .expression_config import DEFAULT_MIN_SIZE, DEFAULT_THRESHOLD, MIN_SIZE_MIN, THRESHOLD_RANGE, VideoSettings
from .expression_errors import ExpressionError
from .expression_faces import Tracker, measure_image
from .expression_images import parse_jpeg
from .realtime_session import Json, RealtimeSession, fields, sub_object
from .state import EmulatorState

MAX_MESSAGE_BYTES = 2_000_000  # HUME-V1-FACTS §4: any message over 2 MB ends a video session
FRAMES_PER_S = 3  # HUME-V1-FACTS §4: at most 3 frames per second
SECONDS_PER_FRAME = 1 / 3  # HUME-V1-FACTS §6: each frame taken in bills 1/3 s
MAX_FAILURES = 5  # HUME-V1-FACTS §4: 5 consecutive measurement failures end the session
IMAGE_FORMAT: Json = {"type": "image/jpeg"}  # HUME-V1-FACTS §3: the one image format


class VideoSession(RealtimeSession):
    endpoint = "video"
    max_message_bytes = MAX_MESSAGE_BYTES

    def __init__(self, ws: WebSocket, state: EmulatorState) -> None:
        self.settings = VideoSettings()
        super().__init__(ws, state)
        self.tracker = Tracker()  # face ids restart in every session (SDK connect() docstring)
        self.taken_in = 0  # frames past the rate check
        self.accepted = 0  # frames accepted for measurement (received.frames)
        self.results = 0  # the next frame_id
        self.faces = 0  # measured faces (produced.measurements counts faces, §8)
        self.failures = 0  # measurement failures in a row

    def run_config(self) -> Json:
        return self.settings.run_config()

    def config_fields(self) -> Json:
        return {k: v for k, v in self.run_config().items() if k in ("image", "face")}

    def update(self, message: Json) -> None:
        fields(message, ("type", "image", "face"), "session.update")
        image = sub_object(message, "image")
        fields(image, tuple(IMAGE_FORMAT), "session.update `image`")
        if image.get("type", IMAGE_FORMAT["type"]) != IMAGE_FORMAT["type"]:
            raise ExpressionError("config_invalid", f"Only image/jpeg frames are supported; got {image['type']!r}.")
        face = sub_object(message, "face")
        fields(face, ("threshold", "min_size"), "session.update `face`")  # no face_state in realtime (§3)
        threshold = face.get("threshold", DEFAULT_THRESHOLD)
        low, high = THRESHOLD_RANGE
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not low <= threshold <= high:
            raise ExpressionError("config_invalid", f"`face.threshold` must be a number from {low:g} to {high:g}.")
        min_size = face.get("min_size", DEFAULT_MIN_SIZE)
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < MIN_SIZE_MIN:
            raise ExpressionError("config_invalid", f"`face.min_size` must be an integer of at least {MIN_SIZE_MIN}.")
        self.settings = VideoSettings(float(threshold), min_size)  # omitted fields reset to their defaults (§3)

    async def media(self, data: bytes) -> None:
        if not self.rate_ok(self.taken_in / FRAMES_PER_S):
            self.event("rate_limited")
            await self.error("rate_limited", f"Frames are arriving faster than {FRAMES_PER_S} per second.")
            return
        self.taken_in += 1
        self.bytes_received += len(data)
        self.meter(SECONDS_PER_FRAME)
        try:
            if not data:
                raise ExpressionError("image_decode_failed", "The frame is empty.")
            image = parse_jpeg(data)
        except ExpressionError as exc:
            self.event("invalid_image_frame", {"detail": exc.message})
            await self.error("invalid_image_frame", exc.message)
            return
        self.accepted += 1
        if "fail" in image.comment.replace(";", " ").split():
            self.failures += 1
            self.event("inference_failed", {"retryable": True, "consecutive": self.failures})
            message = f"Measuring the frame failed ({self.failures} in a row); resend it for its result."
            if self.failures >= MAX_FAILURES:
                await self.fail("internal_error", message)
            await self.error("internal_error", message)
            return
        self.failures = 0
        s = self.settings
        result = measure_image(image, self.results, self.tracker, s.threshold, s.min_size)
        self.results += 1
        self.faces += sum(1 for face in result["faces"] if face["face_id"] is not None)
        await self.send({"type": "measurement.result", **result})

    async def finish(self) -> None:
        """Nothing: every frame was answered as it came, so frames sent before session.close have their replies."""

    def totals(self) -> Json:
        return {"received": {"frames": self.accepted}, "produced": {"measurements": self.faces}}


async def video_realtime(ws: WebSocket) -> None:
    await VideoSession(ws, ws.app.state.emu).serve()


routes = [WebSocketRoute("/v1/expression/video/realtime", video_realtime)]
