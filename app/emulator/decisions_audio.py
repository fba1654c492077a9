"""Audio Decisions answers, derived deterministically from the audio and the full ordered question set.

Hume's model is not available offline; the emulator answers from what it can measure, so tests can assert
answers. The audio is decoded with PyAV and heard as the model hears it, 16 kHz mono (the API "resamples
every file and mixes its channels into one", pypi hume-audio-decisions). Measured over 50 ms windows:

- loudness: the whole file's RMS in dBFS mapped linearly from -60 dB (0) to 0 dB (1);
- silence: the share of windows whose RMS is under -40 dBFS;
- pitch: the median zero-crossing frequency (crossings / 2 / window) of up to 200 non-silent windows, mapped
  on a log scale from 80 Hz (0) to 1000 Hz (1): a pure tone's frequency;
- stretches: runs of non-silent windows, gaps under 300 ms bridged, runs under 100 ms dropped.

Each question gets a small bias in [-0.2, 0.2] from a hash of the whole ordered question set, the context and
its ID, because Hume answers all questions in one inference and "an answer can change when other questions
are added, removed or reordered" (D/writing-questions). With the same questions, the answers follow the audio:

- noul: share = sigmoid(6 (loudness - 0.5) + bias): louder audio, more raters say yes;
- score (n levels): level probabilities ∝ exp(-(i - c)² / 2 s²) with c = pitch (n - 1) + bias and
  s = 0.6 + 1.5 silence; `score` is the mean level Σ i p_i, so it rises with pitch; `confidence` is
  1 - entropy / ln n (raters agree when one level dominates);
- choice (n options, in the order sent): the same distribution over options as over levels, `choice` the
  option with the largest share, probabilities summing to 1;
- span: each stretch with probability sigmoid(8 (its loudness - 0.45) + bias), kept when ≥ 0.5
  (C/2026/12/1: so a stretch quieter than about -34 dBFS is left out), sorted by start, in ms from the start
  of the file.

Input tokens (`received.input_tokens` and `/input_tokens`): the rate is undocumented (D/billing says only that
audio dominates and counts by duration); the emulator bills 25 tokens per second of audio (rounded up) plus one
token per 4 characters of each question's instructions and criteria and of the context.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import statistics
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import av
import orjson

from app.hume import decisions_contract as hume

from .decisions_errors import Refusal

RATE = hume.MODEL_SAMPLE_RATE
WINDOW_MS = 50
SILENT_RMS = 0.01  # -40 dBFS
MIN_GAP_MS = 300
MIN_STRETCH_MS = 100
PITCH_WINDOWS = 200
AUDIO_TOKENS_PER_S = 25  # ASSUMED (emulator only): Hume's token rate is undocumented
CHARS_PER_TOKEN = 4  # ASSUMED (emulator only)
# D/limits-and-errors: MP3 or WAV; cookbooks/evaluating-many-recordings: WAV with PCM or floating-point samples.
_WAV_CODECS = frozenset({"pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le"})
_MP3_CODECS = frozenset({"mp3", "mp3float"})


@dataclass(frozen=True)
class Features:
    duration_ms: int
    loudness: float
    silence: float
    pitch_hz: float | None
    stretches: tuple[tuple[int, int, float], ...]
    """(start_ms, end_ms, loudness 0-1) of each non-silent stretch."""


def sniff(data: bytes) -> str | None:
    """The format, "wav" or "mp3", by content (the part's content type and filename are not trusted), else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"ID3"):
        return "mp3"
    if len(data) >= 4 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        layer, bitrate, rate = (data[1] >> 1) & 3, data[2] >> 4, (data[2] >> 2) & 3
        if layer == 1 and bitrate not in (0, 15) and rate != 3:  # MPEG audio, layer III
            return "mp3"
    return None


def decode(data: bytes) -> array[int]:
    """16 kHz mono s16 samples; audio_format_unsupported for anything that is not a decodable MP3 or WAV."""
    kind = sniff(data)
    if kind is None:
        raise Refusal(hume.AUDIO_FORMAT_UNSUPPORTED, "Send MP3 or WAV audio.", hume.FILE_PART)
    pcm = bytearray()
    try:
        with av.open(io.BytesIO(data), mode="r", format=kind) as container:
            if not container.streams.audio:
                raise Refusal(hume.AUDIO_FORMAT_UNSUPPORTED, f"The {kind.upper()} file has no audio.", hume.FILE_PART)
            stream = container.streams.audio[0]
            if stream.codec_context.name not in (_WAV_CODECS if kind == "wav" else _MP3_CODECS):
                raise Refusal(hume.AUDIO_FORMAT_UNSUPPORTED,
                              f"WAV files must hold PCM or floating-point samples, not {stream.codec_context.name}.",
                              hume.FILE_PART)  # fmt: skip
            codec = stream.codec_context
            if (codec.name, codec.sample_rate, codec.channels) == ("pcm_s16le", RATE, 1):
                for packet in container.demux(stream):  # already what the model hears: the packets are the samples
                    pcm += bytes(packet)
            else:
                resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
                for frame in [*container.decode(stream), None]:
                    for out in resampler.resample(frame):
                        pcm += bytes(out.planes[0])[: out.samples * 2]
    except av.FFmpegError:
        # ASSUMED: no decode-failure code is documented; an unreadable file is not a format Hume takes.
        raise Refusal(hume.AUDIO_FORMAT_UNSUPPORTED, f"The {kind.upper()} file could not be decoded.",
                      hume.FILE_PART) from None  # fmt: skip
    samples = array("h", bytes(pcm[: len(pcm) // 2 * 2]))  # a truncated file may end mid-sample
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def duration_ms(samples: array[int]) -> int:
    return len(samples) * 1000 // RATE


def _rms(window: array[int]) -> float:
    return math.sqrt(sum(x * x for x in window) / len(window)) / 32768 if window else 0.0


def _unit_db(rms: float) -> float:
    return min(1.0, max(0.0, (20 * math.log10(max(rms, 1e-9)) + 60) / 60))


def features(samples: array[int]) -> Features:
    step = RATE * WINDOW_MS // 1000
    windows = [samples[i : i + step] for i in range(0, len(samples), step)]
    levels = [_rms(w[::4]) for w in windows]  # every 4th sample: the RMS barely moves, 4 times as fast
    loud = [i for i, level in enumerate(levels) if level >= SILENT_RMS]
    crossings: list[float] = []
    for i in loud[:: max(1, len(loud) // PITCH_WINDOWS)]:
        w = windows[i]
        flips = sum(1 for a, b in itertools.pairwise(w) if (a < 0) != (b < 0))
        crossings.append(flips / 2 / (len(w) / RATE))
    stretches: list[list[int]] = []
    for i in loud:
        start, end = i * WINDOW_MS, min((i + 1) * WINDOW_MS, duration_ms(samples))
        if stretches and start - stretches[-1][1] < MIN_GAP_MS:
            stretches[-1][1] = end
        else:
            stretches.append([start, end])
    kept = []
    for start, end in stretches:
        if end - start >= MIN_STRETCH_MS:
            inside = levels[start // WINDOW_MS : (end + WINDOW_MS - 1) // WINDOW_MS]
            kept.append((start, end, _unit_db(math.sqrt(sum(v * v for v in inside) / len(inside)))))
    total = math.sqrt(sum(v * v for v in levels) / len(levels)) if levels else 0.0
    return Features(
        duration_ms=duration_ms(samples),
        loudness=_unit_db(total),
        silence=(len(levels) - len(loud)) / len(levels) if levels else 1.0,
        pitch_hz=statistics.median(crossings) if crossings else None,
        stretches=tuple(kept),
    )


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _bias(set_key: bytes, qid: str) -> float:
    digest = hashlib.blake2b(set_key + b"\0" + qid.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") / 2**64 - 0.5) * 0.4


def _pitch_unit(f: Features) -> float:
    if f.pitch_hz is None or f.pitch_hz <= 0:
        return 0.0
    return min(1.0, max(0.0, math.log(f.pitch_hz / 80) / math.log(1000 / 80)))


def _distribution(n: int, f: Features, bias: float) -> list[float]:
    center = _pitch_unit(f) * (n - 1) + bias
    sigma = 0.6 + 1.5 * f.silence
    weights = [math.exp(-((i - center) ** 2) / (2 * sigma**2)) for i in range(n)]
    total = sum(weights)
    return [w / total for w in weights]


def _confidence(shares: list[float]) -> float:
    entropy = -sum(p * math.log(p) for p in shares if p > 0)
    return round(1 - entropy / math.log(len(shares)), 4)


def answer(kind: str, question: Mapping[str, Any], f: Features, bias: float) -> dict[str, Any]:
    """One answer in the shape the contract reads first (decisions_contract: ANSWER spellings)."""
    criteria = question.get(hume.CRITERIA_KEY)
    if kind == "noul":
        return {"type": kind, "noul": round(_sigmoid(6 * (f.loudness - 0.5) + bias), 4)}
    if kind == "choice":
        names = list(criteria or {})
        shares = _distribution(len(names), f, bias)
        return {"type": kind, "choice": names[max(range(len(names)), key=shares.__getitem__)],
                "confidence": _confidence(shares),
                "probabilities": {name: round(p, 6) for name, p in zip(names, shares, strict=True)}}  # fmt: skip
    if kind == "score":
        levels = list(criteria or [])
        shares = _distribution(len(levels), f, bias)
        return {"type": kind, "score": round(sum(i * p for i, p in enumerate(shares)), 4),
                "confidence": _confidence(shares),
                "probabilities": {str(i): round(p, 6) for i, p in enumerate(shares)},
                "legend": {str(i): text for i, text in enumerate(levels)}}  # fmt: skip
    spans = []
    for start, end, loudness in f.stretches:
        p = _sigmoid(8 * (loudness - 0.45) + bias)
        if p >= hume.SPAN_MIN_PROBABILITY:
            spans.append({"audio_start_ms": start, "audio_end_ms": end, "probability": round(p, 4)})
    return {"type": kind, "spans": spans}


def set_key(questions: Mapping[str, Mapping[str, Any]], context: str | None) -> bytes:
    """The whole ordered question set and context, as the bias's seed."""
    return orjson.dumps([[qid, q] for qid, q in questions.items()] + [context])


def answers(questions: Mapping[str, Mapping[str, Any]], context: str | None, f: Features) -> dict[str, Any]:
    key = set_key(questions, context)
    return {qid: answer(str(q[hume.QUESTION_TYPE_KEY]), q, f, _bias(key, qid)) for qid, q in questions.items()}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(f"{k} {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return ""


def input_tokens(duration: int, questions: Mapping[str, Mapping[str, Any]], context: str | None) -> int:
    text = sum(
        math.ceil(len(_text(q.get(hume.INSTRUCTIONS_KEY)) + _text(q.get(hume.CRITERIA_KEY))) / CHARS_PER_TOKEN)
        for q in questions.values()
    )
    return math.ceil(duration * AUDIO_TOKENS_PER_S / 1000) + text + math.ceil(len(context or "") / CHARS_PER_TOKEN)
