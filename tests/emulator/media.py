"""Real media for the v1 tests: WAV/raw PCM with the ``wave`` module, MP3/MP4/JPEG with PyAV."""

from __future__ import annotations

import io
import math
import struct
import wave
from fractions import Fraction

import av

RATE = 16_000


def pcm_tones(seconds: float, tones: list[tuple[float, float]], rate: int = RATE, channels: int = 1) -> bytes:
    """s16le samples: a 440 Hz tone at half scale during each (start_s, end_s), silence elsewhere."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        loud = any(start <= t < end for start, end in tones)
        value = int(16_000 * math.sin(2 * math.pi * 440 * t)) if loud else 0
        frames += struct.pack("<h", value) * channels
    return bytes(frames)


def wav_tones(
    seconds: float, tones: list[tuple[float, float]], rate: int = RATE, channels: int = 1, sample_width: int = 2
) -> bytes:
    """A WAV file of ``pcm_tones`` at any rate and channel count (``sample_width=1``: 8-bit silence)."""
    pcm = pcm_tones(seconds, tones, rate, channels)
    if sample_width == 1:
        pcm = bytes([128]) * (len(pcm) // 2)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(sample_width)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def encoded_audio(container: str, codec: str, seconds: float = 1.0) -> bytes:
    """Silent audio compressed by PyAV, e.g. ``("mp3", "libmp3lame")`` or ``("mp4", "aac")``."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=44_100)
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame(format="s16", layout="mono", samples=int(seconds * 44_100))
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


def strip_id3(mp3: bytes) -> bytes:
    """The MP3 from its first frame on (no ID3v2 tag), so only the frame sync identifies it."""
    if not mp3.startswith(b"ID3"):
        return mp3
    size = 0
    for byte in mp3[6:10]:  # syncsafe integer: 7 bits per byte
        size = size << 7 | byte
    return mp3[10 + size :]


def jpeg(width: int = 320, height: int = 240, luma: int = 128) -> bytes:
    """A flat-grey JPEG encoded by PyAV's mjpeg encoder."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    frame = av.VideoFrame(width, height, "yuvj420p")
    for index, plane in enumerate(frame.planes):
        plane.update(bytes([luma if index == 0 else 128]) * plane.buffer_size)
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def with_segment(image: bytes, marker: int, payload: bytes) -> bytes:
    """The JPEG with one more segment right after SOI (COM is 0xFE; APPn 0xE0-0xEF)."""
    return image[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + image[2:]


def jpeg_with_faces(spec: str, luma: int = 128, width: int = 320, height: int = 240) -> bytes:
    """A JPEG whose comment places faces in the emulator: ``"faces=2"`` or ``"slots=0,3"``."""
    return with_segment(jpeg(width, height, luma), 0xFE, spec.encode())


def padded_jpeg(total_bytes: int) -> bytes:
    """A valid JPEG grown to at least ``total_bytes`` with APP15 segments (each at most 64 KiB)."""
    image = jpeg()
    while len(image) < total_bytes:
        image = with_segment(image, 0xEF, bytes(65_000))
    return image
