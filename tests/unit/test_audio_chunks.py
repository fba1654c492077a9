"""Audio preparation for Hume v1: 16 kHz mono WAV chunks under the size limit, contiguous, cut in pauses."""

from __future__ import annotations

import io
import itertools
import wave
from pathlib import Path

import pytest

from app.media.audio_chunks import iter_audio_chunks
from app.media.errors import MediaDecodeError, NoAudioStream
from tests import media_factory

GAPS = [(27.0, 27.6), (55.0, 55.6), (83.0, 83.6), (111.0, 111.6)]
LIMIT = 1_000_044  # 31.25 s of 16 kHz mono s16, plus the WAV header


@pytest.fixture(scope="module")
def interview(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes of H.264 video with an AAC tone, silent for 0.6 s at each of GAPS."""
    return media_factory.make_mp4(tmp_path_factory.mktemp("audio") / "interview.mp4", 120, gaps=GAPS)


def test_a_two_minute_video_becomes_valid_contiguous_chunks_under_the_limit(interview: Path) -> None:
    chunks = list(iter_audio_chunks(interview, max_bytes=LIMIT, search_s=5))
    assert len(chunks) >= 4
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start_ms == 0
    assert abs(chunks[-1].end_ms - 120_000) <= 50
    for before, after in itertools.pairwise(chunks):
        assert before.end_ms == after.start_ms
    for chunk in chunks:
        assert len(chunk.wav) <= LIMIT
        with wave.open(io.BytesIO(chunk.wav)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
            assert wav.getnframes() * 2 + 44 == len(chunk.wav)
            assert wav.getnframes() == (chunk.end_ms - chunk.start_ms) * 16


def test_each_cut_lands_in_the_silent_gap_before_the_limit(interview: Path) -> None:
    """With a pause in the last 5 s before the limit, the chunk ends inside that pause, not mid-sound."""
    chunks = list(iter_audio_chunks(interview, max_bytes=LIMIT, search_s=5))
    for chunk in chunks[:-1]:
        cut_s = chunk.end_ms / 1000
        assert any(a <= cut_s <= b for a, b in GAPS), f"chunk {chunk.index} cut at {cut_s} s, outside every gap"


def test_without_a_pause_the_chunk_is_cut_at_most_at_the_limit(tmp_path: Path) -> None:
    wav_path = media_factory.make_wav(tmp_path / "tone.wav", 20)
    chunks = list(iter_audio_chunks(wav_path, max_bytes=160_044, search_s=1))
    assert all(len(c.wav) <= 160_044 for c in chunks)
    assert sum(c.end_ms - c.start_ms for c in chunks) == 20_000
    assert chunks[0].end_ms >= 4_000  # the search never shortens a chunk below the limit minus the window


def test_files_without_sound_or_not_media_are_clear_errors(tmp_path: Path) -> None:
    silent_film = media_factory.make_mp4(tmp_path / "silent.mp4", 2, audio=False)
    with pytest.raises(NoAudioStream, match="no audio stream"):
        list(iter_audio_chunks(silent_film))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"<html>not a video</html>" * 40)
    with pytest.raises(MediaDecodeError, match="not a readable audio or video file"):
        list(iter_audio_chunks(junk))


def test_a_truncated_file_is_an_error_after_its_readable_part(tmp_path: Path) -> None:
    whole = media_factory.make_audio_only(tmp_path / "whole.m4a", 20)
    cut = media_factory.truncate(whole, tmp_path / "cut.m4a")
    with pytest.raises(MediaDecodeError, match="truncated"):
        list(iter_audio_chunks(cut, max_bytes=100_044, search_s=1))
