"""Any file's audio as 16 kHz mono 16-bit WAV chunks small enough for one Hume v1 upload each.

Hume v1 takes at most 25 MB a request (HUME.md §9); a chunk's WAV stays under `max_bytes` (24 MB by default,
about 12.5 minutes, leaving room for the multipart envelope). Decoding streams: only the chunk being filled
is in memory, and each chunk is yielded as soon as it is full.

Where a chunk is cut: not blindly at the size limit, which would split a word and give Hume two halves of an
utterance. Once the buffer reaches the limit, the last `search_s` seconds before it are scanned in
`window_ms` windows and the cut goes in the middle of the quietest one (lowest RMS; the latest on ties), so
in speech it lands in a pause. Cuts fall on whole milliseconds (16 samples), so the chunks' `start_ms`/`end_ms`
are exact and contiguous: a result at t ms inside chunk k is at `chunks[k].start_ms + t` in the medium.
Times count from the first decoded audio sample, placed at that frame's timestamp; gaps inside the audio
stream are not reproduced. A file cut short yields its chunks up to the damage, then MediaDecodeError
(see `errors.check_complete`).

Bounds (app.media.limits): a sample rate under 8 kHz (or over 768 kHz), more channels than any recording
has, or a declared duration over MEDIA_MAX_DURATION_S is refused by the first call, before anything is
decoded; audio that only decoding finds longer is cut at the bound, its chunks up to there yielded, then
MediaStoppedAtLimit. The bound counts the 16 kHz samples sent, which is what Hume bills (HUME-V1-FACTS §6).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.audio.stream
import av.container

from app.media.errors import NoAudioStream, check_complete, declared_seconds, open_input
from app.media.limits import DEFAULT_LIMITS, MediaLimits, check_audio_format

SAMPLE_RATE = 16_000
_SAMPLES_PER_MS = SAMPLE_RATE // 1000
_WAV_HEADER_BYTES = 44
DEFAULT_MAX_BYTES = 24_000_000


@dataclass(frozen=True)
class AudioChunk:
    index: int
    start_ms: int
    end_ms: int
    wav: bytes
    """A complete WAV file: RIFF header, 16-bit PCM, 16 kHz, mono."""


def wav_header(pcm_bytes: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + pcm_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        SAMPLE_RATE,
        SAMPLE_RATE * 2,
        2,
        16,
        b"data",
        pcm_bytes,
    )


def open_audio(
    container: av.container.InputContainer, limits: MediaLimits, *, nothing: str
) -> tuple[av.audio.stream.AudioStream, av.AudioResampler]:
    """The container's first audio stream, checked (a format we decode, a declared duration within the limits)
    and set to decode under the limits, with a resampler to 16 kHz mono s16. A file without audio is refused:
    "the file has no audio stream, so there is `nothing`"."""
    if not container.streams.audio:
        raise NoAudioStream(f"the file has no audio stream, so there is {nothing}")
    stream = container.streams.audio[0]
    check_audio_format(stream.codec_context.sample_rate, stream.codec_context.channels)
    limits.check_declared_duration(declared_seconds(container, stream))
    stream.codec_context.options = limits.decoder_options
    return stream, av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)


def _quietest_cut(pcm: bytearray, limit: int, search: int, window: int) -> int:
    """The sample index to cut `pcm` at: the middle of the quietest window within `search` samples before `limit`."""
    best_at, best_energy = limit, -1
    with memoryview(pcm) as raw, raw.cast("h") as samples:
        start = limit - search
        for at in range(start, limit - window + 1, window):
            piece = samples[at : at + window]
            energy = sum(s * s for s in piece)
            if best_energy < 0 or energy <= best_energy:
                best_at, best_energy = at + window // 2, energy
    return best_at - best_at % _SAMPLES_PER_MS


def iter_audio_chunks(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    search_s: float = 10.0,
    window_ms: int = 100,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> Iterator[AudioChunk]:
    """Decode `path`'s first audio stream and yield its chunks in order (see the module docstring).

    Raises MediaDecodeError (not media, truncated, corrupt), NoAudioStream, MediaLimitError (before anything
    is decoded) or MediaStoppedAtLimit; chunks already yielded stand.
    """
    limit = (max_bytes - _WAV_HEADER_BYTES) // 2
    limit -= limit % _SAMPLES_PER_MS
    window = max(_SAMPLES_PER_MS, window_ms * _SAMPLES_PER_MS)
    if limit < 2 * window:
        raise ValueError(f"max_bytes={max_bytes} leaves less than two {window_ms} ms windows of audio")
    # The search never covers more than half a chunk, so every chunk keeps at least half the limit.
    search = min(int(search_s * SAMPLE_RATE) // window * window, limit // 2 // window * window)

    max_samples = int(limits.max_duration_s * SAMPLE_RATE)
    with open_input(path, limits.decoder_options) as container:
        stream, resampler = open_audio(container, limits, nothing="no voice to measure")
        stopped = False
        pcm = bytearray()
        base_ms: int | None = None
        index = 0
        done = 0  # samples already emitted in earlier chunks

        def emit(samples: int) -> AudioChunk:
            nonlocal index, done
            assert base_ms is not None
            data = memoryview(pcm)[: samples * 2]
            try:
                wav = b"".join((wav_header(samples * 2), data))
            finally:
                data.release()
            del pcm[: samples * 2]
            chunk = AudioChunk(
                index=index,
                start_ms=base_ms + done // _SAMPLES_PER_MS,
                end_ms=base_ms + round((done + samples) / _SAMPLES_PER_MS),
                wav=wav,
            )
            index += 1
            done += samples
            return chunk

        def take(frames: list[av.AudioFrame]) -> Iterator[AudioChunk]:
            nonlocal stopped
            for out in frames:
                room = max_samples - done - len(pcm) // 2
                if out.samples > room:
                    stopped = True
                plane = memoryview(out.planes[0])
                pcm.extend(plane[: min(out.samples, room) * 2])
                plane.release()
                while len(pcm) >= limit * 2:
                    yield emit(_quietest_cut(pcm, limit, search, window) if search else limit)
                if stopped:
                    return

        for frame in container.decode(stream):
            if base_ms is None:
                base_ms = max(0, round((frame.time or 0.0) * 1000))
            yield from take(resampler.resample(frame))
            if stopped:
                break
        if base_ms is None:
            return
        if not stopped:
            yield from take(resampler.resample(None))
        if pcm:
            yield emit(len(pcm) // 2)
        if stopped:
            raise limits.stopped_at_duration()
        check_complete(container, stream, (base_ms + done / _SAMPLES_PER_MS) / 1000)
