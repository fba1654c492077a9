"""Any file's audio as 16 kHz mono 16-bit WAV windows of about `window_ms` each, for questions asked per window.

Where a window ends: near its nominal boundary (a whole multiple of `window_ms` from the start, so windows do not
drift), moved to the middle of the quietest 100 ms within `search_ms` either side of it (a pause, in speech), on
a 10 ms grid, the one nearest the boundary on ties. The search is at most a fifth of a window either side, so a
5 s window still keeps 3 s. No window is longer than `max_ms` (the cut is held before it) and none shorter than
`min_ms`: a last window shorter than `merge_below_ms` joins the one before when both together stay within
`max_ms`, and otherwise stands (moved back to `min_ms` when shorter). Cuts fall on whole milliseconds, so the
windows' `start_ms`/`end_ms` are exact and contiguous; times count from the first decoded sample, placed at its
frame's timestamp (as in app.media.audio_chunks).

Decoding streams: only the window being filled, its search range and `merge_below_ms` beyond it are held (a
5-minute window is 9.6 MB), and a window is yielded once nothing that follows can change it. The same file gives
the same windows every time, so a resumed run can skip the windows already answered.

Before any window, the audio is listened to until its first sound (usually within the first second): a file
with no sample above `silence_dbfs` raises SilentAudio, and one with less than `min_ms` of audio raises
AudioTooShort, so nothing is sent for either. The bounds of app.media.limits apply as for any medium; a file cut
short yields its windows up to the damage, then MediaDecodeError (errors.check_complete).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.audio.stream
import av.container

from app.media.audio_chunks import SAMPLE_RATE, open_audio, wav_header
from app.media.errors import MediaError, check_complete, open_input
from app.media.limits import DEFAULT_LIMITS, MediaLimits

_PER_MS = SAMPLE_RATE // 1000
_BLOCK = 10 * _PER_MS  # the 10 ms grid the cut moves on
_QUIET_BLOCKS = 10  # 100 ms: the stretch whose loudness decides a cut
# Every 7th sample when listening for a first sound: a sound loud enough to matter spans many samples, and 7 is
# prime to the periods of common test tones, so a tone is never sampled only at its zero crossings.
_LISTEN_STRIDE = 7
SILENCE_DBFS = -50.0
"""No sample above this (about 100 of 32,767) is a silent file: a recording's noise floor, not a voice."""


class AudioTooShort(MediaError):
    code = "audio_too_short"


class SilentAudio(MediaError):
    code = "audio_silent"


@dataclass(frozen=True)
class WindowRules:
    window_ms: int
    min_ms: int
    """The shortest audio a window may hold."""
    max_ms: int
    """The longest audio a window may hold."""
    merge_below_ms: int
    """A last window shorter than this joins the one before (when both together fit in `max_ms`)."""
    search_ms: int = 2000

    def __post_init__(self) -> None:
        if not 0 < self.min_ms <= self.merge_below_ms <= self.window_ms <= self.max_ms:
            raise ValueError(f"window rules out of order: {self}")

    @property
    def search(self) -> int:
        """Samples the cut may move either way: `search_ms`, at most a fifth of a window, on the 10 ms grid."""
        return min(self.search_ms * _PER_MS, self.window_ms * _PER_MS // 5) // _BLOCK * _BLOCK


@dataclass(frozen=True)
class AudioWindow:
    index: int
    start_ms: int
    end_ms: int
    wav: bytes
    """A complete WAV file: RIFF header, 16-bit PCM, 16 kHz, mono."""

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def quietest_cut(samples: memoryview, lo: int, hi: int, nominal: int) -> int:
    """The cut in [lo, hi] (indices into the 16-bit `samples`): the middle of the quietest 100 ms (by mean square,
    so a stretch running past the audio's end is not favoured), on a 10 ms grid from `lo`, the one nearest
    `nominal` on ties; on a whole millisecond."""
    if hi <= lo:
        return lo - lo % _PER_MS
    half = _QUIET_BLOCKS // 2 * _BLOCK
    blocks: list[tuple[int, int]] = []  # (sum of squares, samples) of each 10 ms from lo - half on
    for at in range(lo - half, min(len(samples), hi + half), _BLOCK):
        piece = samples[max(0, at) : max(0, min(at + _BLOCK, len(samples)))]
        blocks.append((sum(s * s for s in piece), len(piece)))
    best, best_key = lo, (math.inf, math.inf)
    for m, centre in enumerate(range(lo, hi + 1, _BLOCK)):
        stretch = blocks[m : m + _QUIET_BLOCKS]
        count = sum(n for _, n in stretch)
        key = (sum(e for e, _ in stretch) / count if count else math.inf, abs(centre - nominal))
        if key < best_key:
            best, best_key = centre, key
    return best - best % _PER_MS


def _pcm(frames: list[av.AudioFrame]) -> Iterator[memoryview]:
    for out in frames:
        with memoryview(out.planes[0]) as plane:
            yield plane[: out.samples * 2]


def listen(path: str | Path, rules: WindowRules, *, limits: MediaLimits, silence_dbfs: float = SILENCE_DBFS) -> None:
    """Decode until the first sound; raise SilentAudio or AudioTooShort when the whole file has none, or less
    than `rules.min_ms` of audio (a short file's sound is still looked for to its end)."""
    threshold = int(32767 * 10 ** (silence_dbfs / 20))
    heard, samples = False, 0
    with open_input(path, limits.decoder_options) as container:
        stream, resampler = open_audio(container, limits, nothing="nothing to listen to")
        for pcm in _resampled(container.decode(stream), resampler):
            with pcm.cast("h") as values:
                listened = values[::_LISTEN_STRIDE]
                heard = heard or (len(listened) > 0 and max(max(listened), -min(listened)) > threshold)
                samples += len(values)
            if heard and samples >= rules.min_ms * _PER_MS:
                return
    if samples < rules.min_ms * _PER_MS:
        raise AudioTooShort(
            f"the audio lasts {samples / SAMPLE_RATE:.2f} s; at least {rules.min_ms / 1000:g} s is needed"
        )
    raise SilentAudio(f"the audio is silent: no sound above {silence_dbfs:g} dBFS in its {samples / SAMPLE_RATE:.1f} s")


def _resampled(frames: Iterator[av.AudioFrame], resampler: av.AudioResampler) -> Iterator[memoryview]:
    """The 16 kHz mono PCM of `frames`, then what the resampler still holds."""
    for frame in frames:
        yield from _pcm(resampler.resample(frame))
    yield from _pcm(resampler.resample(None))


class _Cutter:
    """The PCM of the windows not yet yielded, from absolute sample `offset` on, and where the next cut goes."""

    def __init__(self, rules: WindowRules, base_ms: int) -> None:
        self.rules = rules
        self.base_ms = base_ms
        self.pcm = bytearray()
        self.offset = 0
        self.index = 0
        self.window = rules.window_ms * _PER_MS
        self.max = rules.max_ms * _PER_MS
        self.tail = rules.merge_below_ms * _PER_MS

    @property
    def end(self) -> int:
        return self.offset + len(self.pcm) // 2

    def _cut(self, start: int, number: int, audio_end: int) -> int:
        """The absolute sample where window `number`, starting at `start` (in the buffer), ends: its nominal
        boundary moved to a pause, within `max_ms` of its start and the audio decoded so far."""
        nominal = (number + 1) * self.window
        search = self.rules.search
        hi = min(nominal + search, start + self.max, audio_end)
        lo = min(nominal - search, hi)
        with memoryview(self.pcm) as raw, raw.cast("h") as samples:
            return self.offset + quietest_cut(samples, lo - self.offset, hi - self.offset, nominal - self.offset)

    def _emit(self, cut: int) -> AudioWindow:
        count = cut - self.offset
        with memoryview(self.pcm) as raw:
            wav = b"".join((wav_header(count * 2), raw[: count * 2]))
        del self.pcm[: count * 2]
        window = AudioWindow(
            index=self.index,
            start_ms=self.base_ms + self.offset // _PER_MS,
            end_ms=self.base_ms + round(cut / _PER_MS),
            wav=wav,
        )
        self.offset = cut
        self.index += 1
        return window

    def ready(self) -> Iterator[AudioWindow]:
        """The windows nothing later can change: their search range and `merge_below_ms` beyond it decoded."""
        while self.end >= (self.index + 1) * self.window + self.rules.search + self.tail:
            yield self._emit(self._cut(self.offset, self.index, self.end))

    def rest(self) -> Iterator[AudioWindow]:
        """The last windows, once the audio has ended: a short last one joins the one before or is lengthened."""
        audio_end = self.end
        if audio_end <= self.offset:
            return
        bounds = [self.offset]
        while (self.index + len(bounds)) * self.window < audio_end:
            bounds.append(self._cut(bounds[-1], self.index + len(bounds) - 1, audio_end))
        bounds.append(audio_end)
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < self.tail:
            if bounds[-1] - bounds[-3] <= self.max:
                del bounds[-2]
            elif bounds[-1] - bounds[-2] < self.rules.min_ms * _PER_MS:
                bounds[-2] = bounds[-1] - self.rules.min_ms * _PER_MS
        for cut in bounds[1:]:
            yield self._emit(cut)


def iter_windows(
    path: str | Path, rules: WindowRules, *, limits: MediaLimits = DEFAULT_LIMITS, silence_dbfs: float = SILENCE_DBFS
) -> Generator[AudioWindow, None, None]:
    """Decode `path`'s first audio stream and yield its windows in order (see the module docstring).

    Raises MediaDecodeError, NoAudioStream, MediaLimitError, SilentAudio or AudioTooShort before any window;
    MediaStoppedAtLimit or MediaDecodeError (truncated) after the windows up to there.
    """
    listen(path, rules, limits=limits, silence_dbfs=silence_dbfs)
    max_samples = int(limits.max_duration_s * SAMPLE_RATE)
    with open_input(path, limits.decoder_options) as container:
        stream, resampler = open_audio(container, limits, nothing="nothing to listen to")
        cutter: _Cutter | None = None
        stopped = False
        damage: av.FFmpegError | None = None
        try:
            for frame in container.decode(stream):
                if cutter is None:
                    cutter = _Cutter(rules, max(0, round((frame.time or 0.0) * 1000)))
                for pcm in _pcm(resampler.resample(frame)):
                    room = max_samples - cutter.end
                    stopped = len(pcm) // 2 > room
                    cutter.pcm.extend(pcm[: min(len(pcm) // 2, room) * 2])
                    yield from cutter.ready()
                    if stopped:
                        break
                if stopped:
                    break
        except av.FFmpegError as exc:
            damage = exc  # the audio decoded before the damage is still windowed
        if cutter is None:
            if damage is not None:
                raise damage
            return
        if not stopped and damage is None:
            for pcm in _pcm(resampler.resample(None)):
                cutter.pcm.extend(pcm)
        reached_s = cutter.base_ms / 1000 + cutter.end / SAMPLE_RATE
        yield from cutter.rest()
        if damage is not None:
            raise damage  # open_input makes it a MediaDecodeError
        if stopped:
            raise limits.stopped_at_duration()
        check_complete(container, stream, reached_s)
