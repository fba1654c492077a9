"""Real audio bytes with the stdlib: speech-like tones as PCM/WAV, and silent MP3 frames.

The sound is a stand-in, not speech: one soft tone burst per word with pauses between, so a
player plays something of the right length and a waveform view looks like talking.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from array import array
from functools import lru_cache

SAMPLE_RATE = 48_000  # Hume's default
_BYTES_PER_SAMPLE = 2

# MPEG-1 Layer III, 128 kbit/s, 48 kHz, mono, no CRC, no padding: 144 * 128000 / 48000 = 384 bytes.
# An all-zero side info and main data decodes to silence, so these frames are valid MP3.
_MP3_HEADER = bytes((0xFF, 0xFB, 0x94, 0xC0))
_MP3_FRAME = _MP3_HEADER + bytes(384 - len(_MP3_HEADER))
MP3_FRAME_SECONDS = 1152 / SAMPLE_RATE

CONTENT_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "mp3": "audio/mpeg"}


@lru_cache(maxsize=64)
def _syllable(pitch_hz: int, length_ms: int) -> bytes:
    """One Hann-windowed tone burst with a little vibrato, as s16le PCM."""
    n = SAMPLE_RATE * length_ms // 1000
    samples = array("h")
    for i in range(n):
        t = i / SAMPLE_RATE
        env = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)
        wobble = 1 + 0.02 * math.sin(2 * math.pi * 5 * t)
        value = math.sin(2 * math.pi * pitch_hz * wobble * t) + 0.3 * math.sin(4 * math.pi * pitch_hz * t)
        samples.append(int(6000 * env * value))
    return samples.tobytes()


def _silence(seconds: float) -> bytes:
    return bytes(int(seconds * SAMPLE_RATE) * _BYTES_PER_SAMPLE)


def speech_pcm(text: str, seconds: float, pitch_hz: int) -> bytes:
    """PCM of exactly ``seconds``: a burst per word spread evenly, silence after the words."""
    total = int(seconds * SAMPLE_RATE) * _BYTES_PER_SAMPLE
    words = text.split() or [""]
    slot = seconds / len(words)
    out = bytearray()
    for i, word in enumerate(words):
        length_ms = max(60, min(int(slot * 1000 * 0.75), 120 + 40 * len(word)))
        burst = _syllable(pitch_hz + (i % 3) * 12, length_ms)
        out += burst
        out += _silence(max(0.0, slot - length_ms / 1000))
    if len(out) >= total:
        return bytes(out[:total])
    return bytes(out) + bytes(total - len(out))


def wav_header(pcm_bytes: int) -> bytes:
    """A RIFF/WAVE header for mono s16le at SAMPLE_RATE."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + pcm_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        SAMPLE_RATE,
        SAMPLE_RATE * _BYTES_PER_SAMPLE,
        _BYTES_PER_SAMPLE,
        16,
        b"data",
        pcm_bytes,
    )


def wav_file(pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(_BYTES_PER_SAMPLE)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return buf.getvalue()


def mp3_frames(seconds: float) -> bytes:
    """Silent MP3 of (at least) ``seconds``: whole frames of 24 ms."""
    return _MP3_FRAME * max(1, math.ceil(seconds / MP3_FRAME_SECONDS))


def encode(fmt: str, pcm: bytes, header: bool = True) -> bytes:
    """``pcm`` in the requested container; ``header=False`` gives bare WAV data (strip_headers)."""
    if fmt == "wav":
        return wav_file(pcm) if header else pcm
    if fmt == "mp3":
        return mp3_frames(len(pcm) / (SAMPLE_RATE * _BYTES_PER_SAMPLE))
    return pcm


def pcm_seconds(pcm: bytes) -> float:
    return len(pcm) / (SAMPLE_RATE * _BYTES_PER_SAMPLE)
