"""Real media made with PyAV for tests and benchmarks: tones with silent gaps, moving pictures, damaged files,
and hostile files (huge pictures, absurd sample rates, hours of silence)."""

from __future__ import annotations

import os
import struct
import zlib
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


# Hostile files: small on disk, costly to decode or to measure. Made with the stdlib and PyAV, never committed.


def png_bytes(width: int, height: int) -> bytes:
    """A black RGB PNG, written by hand: 16000x16000 compresses to ~750 kB (zlib streams its rows of zeros),
    while a decoder must allocate width x height x 3 bytes for it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(1 + width * 3)  # filter byte 0, then the row's pixels
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def make_png_mov(
    path: Path, width: int, height: int, *, frames: int = 4, declared: tuple[int, int] | None = None
) -> Path:
    """A MOV of `frames` PNG pictures, muxed as they are (never decoded here), one a second; `declared` is the
    size the container's header claims instead of the pictures' own."""
    picture = png_bytes(width, height)
    with av.open(str(path), "w", format="mov") as out:
        stream = out.add_stream("png", rate=1)
        assert isinstance(stream, av.video.VideoStream)
        stream.width, stream.height = declared or (width, height)
        stream.pix_fmt = "rgb24"
        for i in range(frames):
            packet = av.Packet(picture)
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.duration = 1
            packet.time_base = Fraction(1, 1)
            packet.is_keyframe = True
            out.mux(packet)
    return path


def make_raw_wav(path: Path, *, rate: int, seconds: float, channels: int = 1) -> Path:
    """A 16-bit PCM WAV written by hand, with any sample rate and channel count its header can hold (a
    20 kB file at 1 Hz lasts 2.8 hours); its samples are a square wave."""
    frames = int(rate * seconds)
    frame = b"".join(struct.pack("<h", 8000 if i % 2 else -8000) for i in range(channels))
    data = frame * frames
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, channels, rate,
        rate * channels * 2, channels * 2, 16, b"data", len(data),
    )  # fmt: skip
    path.write_bytes(header + data)
    return path


def make_flac(
    path: Path,
    seconds: float,
    *,
    rate: int = 8_000,
    gaps: Sequence[tuple[float, float]] = (),
    declare_length: bool = True,
) -> Path:
    """A FLAC tone, silent inside `gaps` (hours of silence take about a megabyte). Without `declare_length`
    its STREAMINFO says the length is unknown (0 samples), so only decoding finds how long it is."""
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        assert isinstance(stream, av.audio.AudioStream)
        for frame in _tone_frames(seconds, rate, gaps):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if not declare_length:
        data = bytearray(path.read_bytes())
        # STREAMINFO follows "fLaC" and its 4-byte block header; its 36-bit sample count is the low nibble of
        # the block's byte 13, then bytes 14-17.
        at = 4 + 4
        data[at + 13] &= 0xF0
        data[at + 14 : at + 18] = bytes(4)
        path.write_bytes(bytes(data))
    return path


def make_headerless_h264(path: Path, seconds: float, *, size: tuple[int, int] = (320, 240)) -> Path:
    """A raw H.264 stream (no container): nothing declares its duration, FFmpeg times it at 25 fps."""
    width, height = size
    with av.open(str(path), "w", format="h264") as out:
        video = out.add_stream("libx264", rate=25)
        assert isinstance(video, av.video.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "30"}
        pictures = [_picture(width, height, i) for i in range(25)]
        for i in range(int(seconds * 25)):
            picture = pictures[i % len(pictures)]
            picture.pts, picture.time_base = i, Fraction(1, 25)
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
    return path
