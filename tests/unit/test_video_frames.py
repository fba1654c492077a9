"""Video preparation for Hume v1: frames sampled at a steady rate, JPEGs and batches within the limits."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest

from app.media.errors import MediaDecodeError, NoVideoStream
from app.media.video_frames import iter_frame_batches, iter_jpeg_frames
from tests import media_factory


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_factory.make_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", 30, size=(640, 360), fps=25)


def _decodes_as(jpeg: bytes, path: Path) -> tuple[int, int]:
    path.write_bytes(jpeg)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    return frame.width, frame.height


def test_frames_are_sampled_at_the_rate_with_increasing_timestamps(clip: Path, tmp_path: Path) -> None:
    frames = list(iter_jpeg_frames(clip, fps=3))
    assert abs(len(frames) - 30 * 3) <= 1
    assert [f.index for f in frames] == list(range(len(frames)))
    stamps = [f.timestamp_ms for f in frames]
    assert stamps[0] == 0
    assert all(0 < b - a <= 400 for a, b in itertools.pairwise(stamps))
    assert all(f.jpeg.startswith(b"\xff\xd8") and f.jpeg.endswith(b"\xff\xd9") for f in frames)
    assert _decodes_as(frames[10].jpeg, tmp_path / "f.jpg") == (640, 360)
    assert len({f.jpeg for f in frames[:8]}) == 8  # the picture moves, so every sample differs


def test_batches_respect_the_byte_and_count_limits(clip: Path) -> None:
    frames = list(iter_jpeg_frames(clip, fps=3))
    limit = 3 * max(len(f.jpeg) for f in frames) + 3 * 512
    batches = list(iter_frame_batches(frames, max_bytes=limit, max_frames=7))
    assert [f for b in batches for f in b.frames] == frames
    assert all(b.jpeg_bytes + 512 * len(b.frames) <= limit and len(b.frames) <= 7 for b in batches)
    assert [b.index for b in batches] == list(range(len(batches)))


def test_a_large_frame_is_scaled_down_and_kept_under_the_jpeg_limit(tmp_path: Path) -> None:
    """A 4096x2304 picture of noise (a 12 MB JPEG) comes out within 3840x2160 and under 2 MB."""
    big = media_factory.make_jpeg(tmp_path / "big.jpg", 4096, 2304, noise=True)
    [frame] = list(iter_jpeg_frames(big))
    assert frame.width <= 3840 and frame.height <= 2160
    assert len(frame.jpeg) <= 2_000_000
    assert _decodes_as(frame.jpeg, tmp_path / "out.jpg") == (frame.width, frame.height)


def test_a_tight_jpeg_limit_is_met_by_coarser_quality(clip: Path) -> None:
    frames = list(iter_jpeg_frames(clip, fps=1, max_jpeg_bytes=6_000))
    assert frames and all(len(f.jpeg) <= 6_000 for f in frames)


def test_audio_only_has_no_video_stream(tmp_path: Path) -> None:
    song = media_factory.make_audio_only(tmp_path / "song.m4a", 3)
    with pytest.raises(NoVideoStream, match="audio only"):
        list(iter_jpeg_frames(song))


def test_a_truncated_mp4_with_its_index_at_the_end_cannot_be_opened(clip: Path, tmp_path: Path) -> None:
    cut = media_factory.truncate(clip, tmp_path / "cut.mp4")
    with pytest.raises(MediaDecodeError, match="truncated"):
        next(iter_jpeg_frames(cut))


def test_a_truncated_faststart_mp4_yields_frames_up_to_the_damage_then_an_error(tmp_path: Path) -> None:
    whole = media_factory.make_mp4(tmp_path / "whole.mp4", 20, faststart=True)
    cut = media_factory.truncate(whole, tmp_path / "cut.mp4")
    got = []
    with pytest.raises(MediaDecodeError, match=r"truncated: it decodes up to"):
        for frame in iter_jpeg_frames(cut):
            got.append(frame)
    assert 10 <= len(got) < 60
