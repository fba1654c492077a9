"""``WSS /v1/expression/audio/realtime``: binary s16le 16 kHz mono frames in, utterances and measurements out.

The stream is measured by the upload's rules (expression_audio.py), applied as the audio arrives: an utterance
starts (`utterance.start`) once its loud stretch reaches the minimum length, an `interval` measurement is sent
as each timer's worth of speech is heard, and the utterance ends (final measurement if due, `utterance.end`)
once the gap after it is long enough that no later audio could extend it, or at `session.close`. So a session
streams exactly the utterances and measurements an upload of the same audio answers (the SDK's upload
docstring: "the same results a realtime session would stream for the same audio"); times count from the
accepted audio (HUME-V1-FACTS §8).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from . import expression_audio as ea
from .expression_config import DEFAULT_TIMER_MS, TIMER_MAX_MS, TIMER_MIN_MS, AudioSettings
from .expression_errors import ExpressionError
from .realtime_session import Json, RealtimeSession, fields, sub_object
from .state import EmulatorState

MAX_MESSAGE_BYTES = 1_048_576  # HUME-V1-FACTS §4: any message over 1 MiB ends the session
MAX_FRAME_BYTES = 320_000  # HUME-V1-FACTS §4: a frame is at most 10 s (320,000 bytes), else invalid_audio_frame
# HUME-V1-FACTS §3 (SDK audio_config.py): the one audio format; any other is config_invalid.
AUDIO_FORMAT: Json = {"type": "audio/pcm", "encoding": "s16le", "sample_rate": ea.RATE, "channels": 1}
STEP = ea.RATE * ea.WINDOW_MS // 1000  # samples per loudness window
BYTES_PER_MS = ea.RATE // 1000 * 2
KEEP_MS = ea.SPAN_MS + 2 * ea.MIN_GAP_MS  # the oldest audio a measurement can still need


class Stream:
    """The accepted audio, measured as it arrives; each step returns the messages it produced."""

    def __init__(self, timer_ms: int) -> None:
        self.timer_ms = timer_ms
        self.pcm = bytearray()  # the most recent audio, from byte `base` of the stream on
        self.base = 0
        self.total = 0  # bytes accepted
        self.scanned = 0  # samples already looked at in windows
        self.span: list[int] | None = None  # [start_ms, end_ms] of the loud stretch still open
        self.started = False  # utterance.start sent for the open span
        self.last_end: int | None = None  # end of the open utterance's latest measurement
        self.next_at = 0  # where its next interval measurement ends
        self.utterances = 0
        self.measurements = 0

    @property
    def detected(self) -> int:
        """Utterances detected, including one still open."""
        return self.utterances + (1 if self.span is not None and self.started else 0)

    @property
    def duration_ms(self) -> int:
        return self.total // 2 * 1000 // ea.RATE  # as the upload counts it (expression_audio.Audio)

    def feed(self, data: bytes) -> list[Json]:
        self.pcm += data
        self.total += len(data)
        out: list[Json] = []
        while (self.total // 2) - self.scanned >= STEP:
            out += self._window(self.scanned + STEP)
        self._trim()
        return out

    def flush(self) -> list[Json]:
        """At session.close: the last partial window, then audio ending mid-speech ends the utterance."""
        out = self._window(self.total // 2) if self.total // 2 > self.scanned else []
        return out + self._end_span()

    def _window(self, stop: int) -> list[Json]:
        start, self.scanned = self.scanned, stop
        begin_ms, end_ms = start * 1000 // ea.RATE, stop * 1000 // ea.RATE
        out: list[Json] = []
        window = ea.samples_of(bytes(self.pcm[start * 2 - self.base : stop * 2 - self.base]))
        if ea.is_loud(window):
            if self.span is not None and begin_ms - self.span[1] < ea.MIN_GAP_MS:
                self.span[1] = end_ms
            else:
                out += self._end_span()
                self.span, self.started, self.last_end = [begin_ms, end_ms], False, None
                self.next_at = begin_ms + self.timer_ms
            out += self._progress()
        elif self.span is not None and end_ms - self.span[1] >= ea.MIN_GAP_MS:
            out += self._end_span()  # no later window can join it
        return out

    def _progress(self) -> list[Json]:
        assert self.span is not None
        start, end = self.span
        out: list[Json] = []
        if not self.started and end - start >= ea.MIN_UTTERANCE_MS:
            self.started = True
            out.append({"type": "utterance.start", "utterance_id": self.utterances, "audio_start_ms": start})
        while self.started and self.next_at <= end:
            out.append(self._measure(max(start, self.next_at - ea.SPAN_MS), self.next_at, "interval"))
            self.last_end, self.next_at = self.next_at, self.next_at + self.timer_ms
        return out

    def _end_span(self) -> list[Json]:
        if self.span is None:
            return []
        out = self._progress()
        start, end = self.span
        self.span = None
        if not self.started:  # under the minimum length: not an utterance
            return out
        if self.last_end is None or end - self.last_end >= ea.FINAL_GAP_MS:
            out.append(self._measure(max(start, end - ea.SPAN_MS), end, "speech_ended"))
        out.append({"type": "utterance.end", "utterance_id": self.utterances, "audio_start_ms": start,
                    "audio_end_ms": end})  # fmt: skip
        self.utterances += 1
        return out

    def _measure(self, begin: int, finish: int, trigger: str) -> Json:
        chunk = bytes(self.pcm[begin * BYTES_PER_MS - self.base : finish * BYTES_PER_MS - self.base])
        result = ea.measurement(chunk, self.measurements, self.utterances, begin, finish, trigger)
        self.measurements += 1
        return {"type": "measurement.result", **result}

    def _trim(self) -> None:
        """Keep the last KEEP_MS only, so a long session holds at most about 0.4 MB of audio (bytearray drops
        its head without copying the rest, so trimming each second costs little)."""
        keep = KEEP_MS * BYTES_PER_MS
        if len(self.pcm) > keep + ea.RATE * 2:
            drop = len(self.pcm) - keep
            del self.pcm[:drop]
            self.base += drop


class AudioSession(RealtimeSession):
    endpoint = "audio"
    max_message_bytes = MAX_MESSAGE_BYTES

    def __init__(self, ws: WebSocket, state: EmulatorState) -> None:
        self.settings = AudioSettings()
        super().__init__(ws, state)
        self.stream = Stream(self.settings.measurement_timer_ms)
        self.frames = 0

    def run_config(self) -> Json:
        return self.settings.run_config(ea.RATE)

    def config_fields(self) -> Json:
        return {"audio": dict(AUDIO_FORMAT), "measurement_timer_ms": self.settings.measurement_timer_ms}

    def update(self, message: Json) -> None:
        fields(message, ("type", "audio", "measurement_timer_ms"), "session.update")
        audio = sub_object(message, "audio")
        fields(audio, tuple(AUDIO_FORMAT), "session.update `audio`")
        for key, value in audio.items():
            if value != AUDIO_FORMAT[key]:
                raise ExpressionError(
                    "config_invalid", f"Only {AUDIO_FORMAT} audio is supported; got `audio.{key}` {value!r}."
                )
        timer: Any = message.get("measurement_timer_ms", DEFAULT_TIMER_MS)
        if isinstance(timer, bool) or not isinstance(timer, int) or not TIMER_MIN_MS <= timer <= TIMER_MAX_MS:
            raise ExpressionError(
                "config_invalid", f"`measurement_timer_ms` must be an integer from {TIMER_MIN_MS} to {TIMER_MAX_MS}."
            )
        self.settings = AudioSettings(timer)  # omitted fields reset to their defaults (§3)
        self.stream = Stream(timer)

    async def media(self, data: bytes) -> None:
        if not data or len(data) % 2 or len(data) > MAX_FRAME_BYTES:
            problem = (f"An audio frame must hold whole 16-bit samples, 1 to {MAX_FRAME_BYTES} bytes; "
                       f"this one is {len(data)} bytes.")  # fmt: skip
            self.event("invalid_audio_frame", {"detail": problem})
            await self.error("invalid_audio_frame", problem)
            return
        seconds = len(data) / 2 / ea.RATE
        if not self.rate_ok(self.stream.total / 2 / ea.RATE):
            # HUME-V1-FACTS §4: at most 1 s of audio per second; "none of its audio is measured" (SDK connect()).
            self.event("rate_limited")
            await self.error("rate_limited", "Audio is arriving faster than 1 second per second; resend this frame.")
            return
        self.frames += 1
        self.bytes_received += len(data)
        self.meter(seconds)  # HUME-V1-FACTS §6: audio seconds taken in
        for message in self.stream.feed(data):
            await self.send(message)

    async def finish(self) -> None:
        for message in self.stream.flush():
            await self.send(message)

    def totals(self) -> Json:
        # HUME-V1-FACTS §8: audio counts measurement messages.
        return {
            "received": {"audio_duration_ms": self.stream.duration_ms, "frames": self.frames},
            "produced": {"utterances": self.stream.detected, "measurements": self.stream.measurements},
        }


async def audio_realtime(ws: WebSocket) -> None:
    await AudioSession(ws, ws.app.state.emu).serve()


routes = [WebSocketRoute("/v1/expression/audio/realtime", audio_realtime)]
