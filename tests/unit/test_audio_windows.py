"""Audio cut into windows for Audio Decisions: 16 kHz mono WAV, contiguous, each cut moved into a pause near its
nominal boundary, never over 5 minutes nor under 1 s, a short last window merged, silent and short files refused."""

from __future__ import annotations

import io
import itertools
import wave
from pathlib import Path

import pytest

from app.hume import decisions_contract as hume
from app.media.errors import MediaDecodeError, MediaStoppedAtLimit, NoAudioStream
from app.media.limits import DEFAULT_LIMITS
from app.media.windows import AudioTooShort, AudioWindow, SilentAudio, WindowRules, iter_windows
from tests import media_factory

# A pause near each 30 s boundary, inside the ±2 s the cut may move: 0.4 s of silence, off the boundary.
GAPS = [(29.0, 29.4), (61.0, 61.4), (89.0, 89.4)]


def rules(window_s: int) -> WindowRules:
    return WindowRules(
        window_ms=window_s * 1000, min_ms=hume.MIN_AUDIO_MS, max_ms=hume.MAX_AUDIO_MS,
        merge_below_ms=hume.ADVISED_MIN_AUDIO_MS,
    )  # fmt: skip


def spans(windows: list[AudioWindow]) -> list[tuple[int, int]]:
    return [(w.start_ms, w.end_ms) for w in windows]


@pytest.fixture(scope="module")
def interview(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_factory.make_audio_only(tmp_path_factory.mktemp("windows") / "interview.m4a", 120, gaps=GAPS)


def test_two_minutes_in_30_s_windows_are_four_valid_contiguous_wavs_cut_in_the_pauses(interview: Path) -> None:
    windows = list(iter_windows(interview, rules(30)))
    assert [w.index for w in windows] == [0, 1, 2, 3]
    assert windows[0].start_ms == 0 and abs(windows[-1].end_ms - 120_000) <= 30
    for before, after in itertools.pairwise(windows):
        assert before.end_ms == after.start_ms
        cut_s = before.end_ms / 1000
        assert any(a <= cut_s <= b for a, b in GAPS), f"window {before.index} cut at {cut_s} s, outside every pause"
    for w in windows:
        with wave.open(io.BytesIO(w.wav)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
            assert wav.getnframes() == w.duration_ms * 16
        assert len(w.wav) < hume.MAX_REQUEST_BYTES


def test_the_same_file_gives_the_same_windows(interview: Path) -> None:
    """A resumed job skips the windows already answered by index: they must be the same windows."""
    assert spans(list(iter_windows(interview, rules(30)))) == spans(list(iter_windows(interview, rules(30))))


def test_without_a_pause_each_cut_stays_within_two_seconds_of_its_boundary(tmp_path: Path) -> None:
    tone = media_factory.make_wav(tmp_path / "tone.wav", 100)
    windows = list(iter_windows(tone, rules(20)))
    assert len(windows) == 5
    for w in windows[:-1]:
        assert abs(w.end_ms - (w.index + 1) * 20_000) <= 2000


@pytest.mark.parametrize(
    ("seconds", "window_s", "expected"),
    [
        # 2 s past the last boundary: shorter than 5 s, so it joins the window before (62 s).
        (122, 60, [60_000, 122_000]),
        # 8 s past it: a window of its own.
        (128, 60, [60_000, 120_000, 128_000]),
        # 5-minute windows: joining 1.5 s would make 301.5 s, over Hume's 5 minutes, so it stands.
        (301.5, 300, [300_000, 301_500]),
        # A file shorter than one window is one window.
        (3, 60, [3_000]),
    ],
)
def test_a_short_last_window_joins_the_one_before_only_within_five_minutes(
    tmp_path: Path, seconds: float, window_s: int, expected: list[int]
) -> None:
    path = media_factory.make_wav(tmp_path / "tone.wav", seconds, rate=16_000)
    windows = list(iter_windows(path, rules(window_s)))
    ends = [w.end_ms for w in windows]
    assert len(ends) == len(expected) and ends[-1] == expected[-1]
    for got, nominal in zip(ends[:-1], expected[:-1], strict=True):
        assert abs(got - nominal) <= 2000
    assert all(hume.MIN_AUDIO_MS <= w.duration_ms <= hume.MAX_AUDIO_MS for w in windows)


def test_a_last_window_under_one_second_that_cannot_join_is_lengthened_to_one_second(tmp_path: Path) -> None:
    path = media_factory.make_wav(tmp_path / "tone.wav", 300.4, rate=16_000, gaps=[(299.95, 300.4)])
    windows = list(iter_windows(path, rules(300)))
    assert [w.duration_ms >= hume.MIN_AUDIO_MS for w in windows] == [True, True]
    assert windows[-1].end_ms == 300_400 and windows[0].duration_ms <= hume.MAX_AUDIO_MS


def test_short_silent_and_soundless_files_are_refused_before_any_window(tmp_path: Path) -> None:
    with pytest.raises(AudioTooShort, match=r"0\.50 s"):
        next(iter_windows(media_factory.make_wav(tmp_path / "blip.wav", 0.5), rules(60)))
    with pytest.raises(SilentAudio, match="silent"):
        next(iter_windows(media_factory.make_wav(tmp_path / "quiet.wav", 20, gaps=[(0, 20)]), rules(60)))
    with pytest.raises(NoAudioStream):
        next(iter_windows(media_factory.make_mp4(tmp_path / "film.mp4", 2, audio=False), rules(60)))
    (tmp_path / "notes.txt").write_text("not audio\n" * 200)  # FFmpeg reads text as a picture
    with pytest.raises(NoAudioStream):
        next(iter_windows(tmp_path / "notes.txt", rules(60)))
    (tmp_path / "junk.mp4").write_bytes(b"<html>not a recording</html>" * 40)
    with pytest.raises(MediaDecodeError, match="not a readable audio or video file"):
        next(iter_windows(tmp_path / "junk.mp4", rules(60)))


def test_a_file_silent_at_first_is_still_heard(tmp_path: Path) -> None:
    path = media_factory.make_wav(tmp_path / "late.wav", 20, gaps=[(0, 15)])
    assert spans(list(iter_windows(path, rules(60)))) == [(0, 20_000)]


def test_a_truncated_file_yields_its_windows_then_a_decode_error(tmp_path: Path) -> None:
    # FLAC declares its length (a WAV's is read from its size, so a cut WAV looks whole).
    whole = media_factory.make_flac(tmp_path / "whole.flac", 40)
    cut = media_factory.truncate(whole, tmp_path / "cut.flac", keep=0.6)
    got: list[AudioWindow] = []
    with pytest.raises(MediaDecodeError, match="truncated"):
        got.extend(iter_windows(cut, rules(10)))
    assert got[0].start_ms == 0 and 15_000 < got[-1].end_ms < 30_000


def test_decoding_past_the_duration_bound_stops_there(tmp_path: Path) -> None:
    path = media_factory.make_flac(tmp_path / "long.flac", 30, declare_length=False)
    limits = DEFAULT_LIMITS.__class__(**{**DEFAULT_LIMITS.__dict__, "max_duration_s": 12.0})
    got: list[AudioWindow] = []
    with pytest.raises(MediaStoppedAtLimit):
        got.extend(iter_windows(path, rules(5), limits=limits))
    assert got and got[-1].end_ms <= 12_000
