"""Real media made with PyAV for tests and benchmarks: tones with silent gaps, moving pictures, damaged files."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.audio
import av.video
from av.video.codeccontext import VideoCodecContext

TONE_HZ = 400  # divides the sample rates used here, so one period tiles the tone exactly
_AUDIO_FRAME = 1024


def _tone_frames(
    seconds: float, rate: int, gaps: Sequence[tuple[float, float]], amplitude: int = 12000
) -> Iterator[av.AudioFrame]:
    """Mono s16 frames of a tone, silent inside each (start_s, end_s) gap."""
    period = rate // TONE_HZ
    # A square-ish tone built from a period table: no numpy needed, and loud enough for RMS to tell apart.
    wave = b"".join(
        int(amplitude if i < period // 2 else -amplitude).to_bytes(2, "little", signed=True) for i in range(period)
    )
    tiled = wave * (_AUDIO_FRAME // period + 2)
    silence = bytes(_AUDIO_FRAME * 2)
    total = int(seconds * rate)
    for start in range(0, total, _AUDIO_FRAME):
        n = min(_AUDIO_FRAME, total - start)
        mid = (start + n / 2) / rate
        quiet = any(a <= mid < b for a, b in gaps)
        offset = (start % period) * 2
        data = silence[: n * 2] if quiet else tiled[offset : offset + n * 2]
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(data + bytes(frame.planes[0].buffer_size - len(data)))
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def _picture(width: int, height: int, i: int) -> av.VideoFrame:
    """A grey picture with a bright bar that moves a little every frame (so frames differ)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    bar = max(8, width // 16)
    x = (i * 4) % max(1, width - bar)
    row = b"\x40" * x + b"\xe0" * bar + b"\x40" * (width - x - bar)
    luma = frame.planes[0]
    padded = row + bytes(luma.line_size - width)
    luma.update(padded * height)
    for plane in frame.planes[1:]:
        plane.update(b"\x80" * plane.buffer_size)
    return frame


def make_wav(path: Path, seconds: float, *, rate: int = 44_100, gaps: Sequence[tuple[float, float]] = ()) -> Path:
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        assert isinstance(stream, av.audio.AudioStream)
        for frame in _tone_frames(seconds, rate, gaps):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_audio_only(path: Path, seconds: float, *, gaps: Sequence[tuple[float, float]] = ()) -> Path:
    """An AAC .m4a: audio in an MP4 container, no picture."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48_000, layout="mono")
        assert isinstance(stream, av.audio.AudioStream)
        for frame in _tone_frames(seconds, 48_000, gaps):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_mp4(
    path: Path,
    seconds: float,
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
    gaps: Sequence[tuple[float, float]] = (),
    audio: bool = True,
    codec: str = "libx264",
    faststart: bool = False,
) -> Path:
    """H.264 (ultrafast) moving pictures plus, unless `audio=False`, an AAC tone silent inside `gaps`."""
    width, height = size
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"} if faststart else {}) as out:
        video = out.add_stream(codec, rate=fps)
        assert isinstance(video, av.video.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "30"}
        sound = out.add_stream("aac", rate=48_000, layout="mono") if audio else None
        # Pictures are cycled from a small set: building a fresh one per frame would dominate long videos.
        pictures = [_picture(width, height, i) for i in range(min(fps * 4, int(seconds * fps) + 1))]
        tones = _tone_frames(seconds, 48_000, gaps) if sound is not None else iter(())
        pending_audio = next(tones, None)
        for i in range(int(seconds * fps)):
            picture = pictures[i % len(pictures)]
            picture.pts = i
            picture.time_base = Fraction(1, fps)
            out.mux(video.encode(picture))
            # Interleave audio up to the picture's time, as a real recorder would.
            while sound is not None and pending_audio is not None and (pending_audio.time or 0.0) <= (i + 1) / fps:
                out.mux(sound.encode(pending_audio))
                pending_audio = next(tones, None)
        while sound is not None and pending_audio is not None:
            out.mux(sound.encode(pending_audio))
            pending_audio = next(tones, None)
        out.mux(video.encode(None))
        if sound is not None:
            out.mux(sound.encode(None))
    return path


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    """The first `keep` of `source`'s bytes, as an interrupted download leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def make_jpeg(path: Path, width: int, height: int, *, noise: bool = False) -> Path:
    """One JPEG picture; `noise` makes it as hard to compress as a picture gets."""
    frame = _picture(width, height, 0)
    if noise:
        for plane in frame.planes:
            plane.update(os.urandom(plane.buffer_size))
    ctx = av.CodecContext.create("mjpeg", "w")
    assert isinstance(ctx, VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = width, height, "yuvj420p", Fraction(1, 25)
    ctx.qmin = ctx.qmax = 2
    image = frame.reformat(format="yuvj420p")
    image.pts, image.time_base = 0, ctx.time_base
    path.write_bytes(b"".join(bytes(p) for p in ctx.encode(image)))
    return path
