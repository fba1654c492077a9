"""Sample media the emulator serves at /_emulator/media/{name}, made on first use with PyAV: something a
v1 job can fetch under `make run` without the internet (talk.wav: speech-like tone bursts; talk.mp4: the
same sound under a moving picture). Deterministic, a few hundred kB, kept in memory once made."""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Iterator
from fractions import Fraction

import av
import av.audio
import av.video
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .responses import json

SECONDS = 12
RATE = 48_000
_FRAME = 960
_TONE_HZ = 200  # divides RATE: one period tiles the tone exactly
# Bursts of "speech" with pauses between them, so the emulator finds several utterances.
_TALKING = ((0.5, 3.0), (4.0, 6.5), (7.5, 11.0))


def _sound() -> Iterator[av.AudioFrame]:
    period = RATE // _TONE_HZ
    wave = b"".join((9000 if i < period // 2 else -9000).to_bytes(2, "little", signed=True) for i in range(period))
    tiled = wave * (_FRAME // period + 1)
    for start in range(0, SECONDS * RATE, _FRAME):
        mid = (start + _FRAME / 2) / RATE
        talking = any(a <= mid < b for a, b in _TALKING)
        frame = av.AudioFrame(format="s16", layout="mono", samples=_FRAME)
        frame.planes[0].update(tiled[: _FRAME * 2] if talking else bytes(_FRAME * 2))
        frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
        yield frame


def _picture(i: int, width: int = 320, height: int = 240) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    x = (i * 6) % (width - 40)
    row = b"\x50" * x + b"\xd0" * 40 + b"\x50" * (width - x - 40)
    frame.planes[0].update((row + bytes(frame.planes[0].line_size - width)) * height)
    for plane in frame.planes[1:]:
        plane.update(b"\x80" * plane.buffer_size)
    return frame


@functools.cache
def wav() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE, layout="mono")
        assert isinstance(stream, av.audio.AudioStream)
        for frame in _sound():
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


@functools.cache
def mp4(fps: int = 10) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=fps)
        assert isinstance(video, av.video.VideoStream)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = container.add_stream("aac", rate=RATE, layout="mono")
        frames = _sound()
        pending = next(frames, None)
        for i in range(SECONDS * fps):
            picture = _picture(i)
            picture.pts, picture.time_base = i, Fraction(1, fps)
            container.mux(video.encode(picture))
            while pending is not None and (pending.time or 0.0) <= (i + 1) / fps:
                container.mux(sound.encode(pending))
                pending = next(frames, None)
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    return out.getvalue()


_MEDIA = {"talk.wav": ("audio/wav", wav), "talk.mp4": ("video/mp4", mp4)}


async def sample(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _MEDIA:
        return json({"message": f"no sample {name!r}; there are {', '.join(_MEDIA)}"}, status_code=404)
    content_type, make = _MEDIA[name]
    # Encoding takes a moment the first time: off the event loop, so the emulator keeps answering.
    return Response(await asyncio.to_thread(make), media_type=content_type)


routes = [Route("/_emulator/media/{name}", sample, methods=["GET"])]
