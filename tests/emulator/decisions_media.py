"""Real audio for the Audio Decisions tests, encoded by PyAV: tones of a chosen pitch and loudness with silent
gaps, as WAV (16-bit or float) or MP3, at any rate and channel count, and multipart bodies built byte by byte."""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import av
import orjson

_FRAME = 1024


def pcm(
    seconds: float, *, hz: int = 220, amplitude: float = 0.5, rate: int = 16_000,
    gaps: Sequence[tuple[float, float]] = (),
) -> array[int]:  # fmt: skip
    """Mono s16 samples of a sine at `hz` (whole Hz, so one second tiles exactly), silent inside each gap."""
    second = array("h", (round(amplitude * 32767 * math.sin(2 * math.pi * hz * i / rate)) for i in range(rate)))
    total = round(seconds * rate)
    samples = second * (total // rate + 1)
    del samples[total:]
    for start, end in gaps:
        a, b = round(start * rate), min(total, round(end * rate))
        samples[a:b] = array("h", bytes(2 * (b - a)))
    return samples


def encode(samples: array[int], *, rate: int = 16_000, channels: int = 1, codec: str = "pcm_s16le") -> bytes:
    """`samples` (mono) in a WAV (`pcm_s16le`, `pcm_f32le`, `pcm_u8`, ...) or MP3 (`libmp3lame`) file."""
    layout = "mono" if channels == 1 else "stereo"
    container = "mp3" if codec == "libmp3lame" else "wav"
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        for start in range(0, len(samples), _FRAME):
            chunk = samples[start : start + _FRAME]
            data = bytes(array("h", (s for s in chunk for _ in range(channels))))
            frame = av.AudioFrame(format="s16", layout=layout, samples=len(chunk))
            frame.planes[0].update(data + bytes(frame.planes[0].buffer_size - len(data)))
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()


def wav(seconds: float, **tone: Any) -> bytes:
    rate = tone.pop("rate", 16_000)
    channels = tone.pop("channels", 1)
    codec = tone.pop("codec", "pcm_s16le")
    return encode(pcm(seconds, rate=rate, **tone), rate=rate, channels=channels, codec=codec)


def mp3(seconds: float, **tone: Any) -> bytes:
    return encode(pcm(seconds, rate=44_100, **tone), rate=44_100, codec="libmp3lame")


BOUNDARY = "decisions-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: tuple[str, bytes, str | None]) -> bytes:
    """A multipart body of (name, data, filename) parts, in the order given."""
    out = bytearray()
    for name, data, filename in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        kind = "application/json" if filename is None else "audio/wav"
        out += f"Content-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def request_part(questions: dict[str, Any], context: str | None = None) -> tuple[str, bytes, None]:
    body: dict[str, Any] = {"questions": questions}
    if context is not None:
        body["context"] = context
    return ("request", orjson.dumps(body), None)


def file_part(data: bytes, filename: str = "audio.wav") -> tuple[str, bytes, str]:
    return ("file", data, filename)
