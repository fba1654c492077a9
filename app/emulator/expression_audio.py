"""v1 audio: read 16 kHz mono s16le (WAV or headerless), find utterances, score measurements.

Results are deterministic and follow the content: an utterance is a stretch where the RMS of
50 ms windows is above ``LOUD_RMS`` (gaps under ``MIN_GAP_MS`` are bridged, stretches under
``MIN_UTTERANCE_MS`` dropped); each measurement's scores are seeded by a hash of its samples.
"""

from __future__ import annotations

import hashlib
import random
import struct
import sys
from array import array
from dataclasses import dataclass
from typing import Any

from .expression_errors import ExpressionError
from .expression_labels import AUDIO_EXPRESSIONS, VOICE_ATTRIBUTES

RATE = 16_000  # HUME-V1-FACTS §4: s16le PCM, 16,000 Hz, mono, no conversion
WINDOW_MS = 50
LOUD_RMS = 500.0  # about -36 dBFS: room noise stays below, speech is well above
MIN_GAP_MS = 300
MIN_UTTERANCE_MS = 100
SPAN_MS = 10_000  # HUME-V1-FACTS §4: a measurement covers at most the utterance's latest 10 s
FINAL_GAP_MS = 1_000  # HUME-V1-FACTS §6: no speech_ended measurement within 1 s of the previous one
VOICE_ATTRIBUTE_CUTOFF = 0.725  # HUME-V1-FACTS §6: voice_attributes only >= 0.725
_UNKNOWN_SIZE = 0xFFFFFFFF


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # s16le samples

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // RATE


def _sniff_other_format(data: bytes) -> str | None:
    """The name of a container/codec the API refuses rather than reading it as raw samples."""
    if data.startswith(b"ID3"):
        return "MP3"
    if data[4:8] == b"ftyp":
        return "MP4/M4A"
    for magic, name in ((b"fLaC", "FLAC"), (b"OggS", "Ogg")):
        if data.startswith(magic):
            return name
    if len(data) >= 4 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        # An MPEG audio frame header: check the fields whose all-ones/zero values are invalid,
        # so raw samples that merely start with 0xFFE are still read as samples.
        version, layer = (data[1] >> 3) & 3, (data[1] >> 1) & 3
        bitrate, rate = data[2] >> 4, (data[2] >> 2) & 3
        if version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3:
            return "MP3"
    return None


def _read_wav(data: bytes) -> bytes:
    if data[8:12] != b"WAVE":
        raise ExpressionError("unsupported_media_type", "RIFF files other than WAV are not supported.")
    pos, fmt_ok, pcm = 12, False, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise ExpressionError("audio_decode_failed", "The WAV fmt chunk is truncated.")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE:
                raise ExpressionError("audio_decode_failed", "The extensible WAV header is not supported.")
            if (tag, channels, rate, bits) != (1, 1, RATE, 16):
                raise ExpressionError(
                    "audio_decode_failed",
                    f"WAV audio must be 16-bit PCM, 16 kHz, mono; got format {tag}, {bits}-bit, "
                    f"{rate} Hz, {channels} channel(s).",
                )
            fmt_ok = True
        elif chunk_id == b"data":
            if not fmt_ok:
                raise ExpressionError("audio_decode_failed", "The WAV data chunk comes before its fmt chunk.")
            end = len(data) if size == _UNKNOWN_SIZE else body + size
            if end > len(data):
                raise ExpressionError("audio_decode_failed", "The WAV file is truncated.")
            pcm = data[body:end]
            break
        pos = body + size + (size & 1)  # chunks are word-aligned
    if pcm is None:
        raise ExpressionError("audio_decode_failed", "The WAV file has no data chunk.")
    if not pcm or len(pcm) % 2:
        raise ExpressionError("audio_decode_failed", "The WAV data is empty or not whole 16-bit samples.")
    return pcm


def decode(data: bytes) -> Audio:
    """The samples of an upload, or the error Hume answers for it."""
    if data.startswith((b"RIFF", b"RIFX", b"RF64")):
        if data[:4] != b"RIFF":
            raise ExpressionError("audio_decode_failed", "Only little-endian RIFF WAV files are supported.")
        return Audio(_read_wav(data))
    other = _sniff_other_format(data)
    if other is not None:
        raise ExpressionError(
            "unsupported_media_type", f"{other} audio is not supported; send 16-bit PCM 16 kHz mono WAV or raw samples."
        )
    if not data or len(data) % 2:
        raise ExpressionError("audio_decode_failed", "Headerless audio must be a non-empty run of 16-bit samples.")
    return Audio(data)


def samples_of(pcm: bytes) -> array[int]:
    samples = array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def is_loud(window: array[int]) -> bool:
    """Whether one ``WINDOW_MS`` window of samples is speech (realtime sessions apply the same rule)."""
    window = window[::4]  # every 4th sample: RMS barely changes, 4x faster
    return bool(window) and (sum(x * x for x in window) / len(window)) ** 0.5 > LOUD_RMS


def utterances(audio: Audio) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of each loud stretch, in order."""
    samples = samples_of(audio.pcm)
    step = RATE * WINDOW_MS // 1000
    spans: list[list[int]] = []
    for i in range(0, len(samples), step):
        if not is_loud(samples[i : i + step]):
            continue
        start, end = i * 1000 // RATE, min(i + step, len(samples)) * 1000 // RATE
        if spans and start - spans[-1][1] < MIN_GAP_MS:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [(s, e) for s, e in spans if e - s >= MIN_UTTERANCE_MS]


def _windows(start: int, end: int, timer_ms: int) -> list[tuple[int, int, str]]:
    """The measurements of one utterance, as the SDK's docstring describes them."""
    out: list[tuple[int, int, str]] = []
    t = start + timer_ms
    while t <= end:
        out.append((max(start, t - SPAN_MS), t, "interval"))
        t += timer_ms
    if not out or end - out[-1][1] >= FINAL_GAP_MS:
        out.append((max(start, end - SPAN_MS), end, "speech_ended"))
    return out


def _scores(rng: random.Random, names: tuple[str, ...], count: int, low: float) -> list[dict[str, Any]]:
    """`count` names scored in [low, 0.99): HUME-V1-FACTS §6, probability to 4 dp, sorted by probability,
    then by the underlying (unrounded) score, then by name."""
    picked = rng.sample(names, count)
    scored = [(rng.uniform(low, 0.99), name) for name in picked]
    scored.sort(key=lambda p: (-round(p[0], 4), -p[0], p[1]))
    return [{"name": name, "probability": round(p, 4)} for p, name in scored]


def measure(audio: Audio, timer_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The response's ``utterances`` and ``measurements``."""
    utts: list[dict[str, Any]] = []
    measurements: list[dict[str, Any]] = []
    for utterance_id, (start, end) in enumerate(utterances(audio)):
        utts.append({"utterance_id": utterance_id, "audio_start_ms": start, "audio_end_ms": end})
        for begin, finish, trigger in _windows(start, end, timer_ms):
            chunk = audio.pcm[begin * RATE // 1000 * 2 : finish * RATE // 1000 * 2]
            measurements.append(measurement(chunk, len(measurements), utterance_id, begin, finish, trigger))
    return utts, measurements


def measurement(
    chunk: bytes, measurement_id: int, utterance_id: int, begin: int, finish: int, trigger: str
) -> dict[str, Any]:
    """One measurement of the samples ``chunk`` (``begin``-``finish`` ms), scored from a hash of them, so a
    realtime session measures the same audio as an upload does."""
    rng = random.Random(hashlib.blake2b(chunk, digest_size=8).digest())
    return {
        "measurement_id": measurement_id,
        "utterance_id": utterance_id,
        "audio_start_ms": begin,
        "audio_end_ms": finish,
        "trigger": trigger,
        # HUME-V1-FACTS §6: each expression has its own cutoff and the list "may be empty"; about one
        # measurement in nine names none here, so a client that assumes a strongest expression fails here.
        "expressions": _scores(rng, AUDIO_EXPRESSIONS, rng.randint(0, 8), 0.3),
        "voice_attributes": _scores(rng, VOICE_ATTRIBUTES, rng.randint(0, 3), VOICE_ATTRIBUTE_CUTOFF),
    }
