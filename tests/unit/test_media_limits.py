"""Media bounds (app.media.limits) on hostile files made here with PyAV and the stdlib: what the headers declare
is refused before a frame is decoded; what only decoding finds stops the decode there, after what came before."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import Settings
from app.media.audio_chunks import AudioChunk, iter_audio_chunks
from app.media.errors import KEEPS_MEASURED, MediaLimitError, MediaStoppedAtLimit
from app.media.limits import MediaLimits
from app.media.video_frames import FrameBatch, iter_frame_batches, iter_jpeg_frames
from tests.media_factory import make_flac, make_headerless_h264, make_mp4, make_png_mov, make_raw_wav

ROOT = Path(__file__).resolve().parents[2]
LOOSE = MediaLimits(max_pixels=10**9, max_frame_bytes=10**10, max_duration_s=10**6, max_frames=10**6)


@pytest.fixture(scope="module")
def huge_png_mov(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 16000x16000 PNG pictures in a 3 MB MOV: 768 MB each, decoded."""
    return make_png_mov(tmp_path_factory.mktemp("hostile") / "huge.mov", 16000, 16000)


@pytest.fixture(scope="module")
def disguised_png_mov(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same pictures in a MOV whose header declares 320x240."""
    return make_png_mov(tmp_path_factory.mktemp("hostile") / "disguised.mov", 16000, 16000, declared=(320, 240))


def _decode_in_a_process(path: Path) -> dict[str, object]:
    """Prepare `path` as the v1 backend does, with the default limits, in a fresh process: its outcome and its
    peak RSS (VmHWM) over the same process idle."""
    script = """
import json, sys
from app.media.errors import MediaError
from app.media.video_frames import FrameBatch, iter_frame_batches, iter_jpeg_frames
def hwm():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
idle = hwm()
try:
    outcome = f"{sum(len(b.frames) for b in iter_frame_batches(iter_jpeg_frames(sys.argv[1])))} frames"
except MediaError as exc:
    outcome = exc.code
print(json.dumps({"outcome": outcome, "growth_kb": hwm() - idle}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], cwd=ROOT, check=True, capture_output=True, text=True, timeout=300
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("name", ["huge", "disguised"])
def test_huge_pictures_are_refused_before_they_are_decoded(
    name: str, huge_png_mov: Path, disguised_png_mov: Path
) -> None:
    """Unbounded, preparing this 3 MB file took 3.1 GB; refused from its header (or, when the header lies, by
    the decoder at the picture's own header) it costs what opening a file does."""
    path = huge_png_mov if name == "huge" else disguised_png_mov
    result = _decode_in_a_process(path)
    assert result["outcome"] == "media_frame_too_large", result
    growth_kb = result["growth_kb"]
    assert isinstance(growth_kb, int) and growth_kb < 64 * 1024, result


def test_the_refusal_names_the_picture_the_limit_and_the_setting(tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "clip.mp4", 1.0, audio=False)  # 320x240
    with pytest.raises(MediaLimitError) as refused:
        next(iter_jpeg_frames(clip, limits=replace(LOOSE, max_pixels=320 * 239)))
    assert refused.value.code == "media_frame_too_large"
    assert "320x240" in refused.value.message and "76,480" in refused.value.message
    assert "MEDIA_MAX_PIXELS" in refused.value.message
    # yuv420p is 1.5 bytes a pixel: 115,200 bytes a picture.
    with pytest.raises(MediaLimitError) as refused:
        next(iter_jpeg_frames(clip, limits=replace(LOOSE, max_frame_bytes=115_199)))
    assert refused.value.code == "media_frame_too_large"
    assert "115,200 bytes" in refused.value.message and "MEDIA_MAX_FRAME_BYTES" in refused.value.message
    assert len(list(iter_jpeg_frames(clip, limits=replace(LOOSE, max_frame_bytes=115_200)))) == 3


def test_a_video_declaring_too_long_or_too_many_frames_is_refused_before_any_frame(tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "clip.mp4", 10.0, audio=False, fps=5)
    with pytest.raises(MediaLimitError) as refused:
        next(iter_jpeg_frames(clip, limits=replace(LOOSE, max_duration_s=9.0)))
    assert refused.value.code == "media_too_long" and not isinstance(refused.value, MediaStoppedAtLimit)
    assert "MEDIA_MAX_DURATION_S" in refused.value.message
    # 10 s at 3 fps: 31 frames (one at 0 s).
    with pytest.raises(MediaLimitError) as refused:
        next(iter_jpeg_frames(clip, fps=3, limits=replace(LOOSE, max_frames=30)))
    assert refused.value.code == "media_too_many_frames" and "MEDIA_MAX_FRAMES" in refused.value.message
    assert len(list(iter_jpeg_frames(clip, fps=1, limits=replace(LOOSE, max_frames=30)))) == 10


def test_a_video_without_a_declared_duration_stops_at_the_limit_keeping_what_came_before(tmp_path: Path) -> None:
    raw = make_headerless_h264(tmp_path / "raw.h264", 4.0)  # 100 frames timed at 25 fps
    limits = replace(LOOSE, max_duration_s=2.0)
    batches: list[FrameBatch] = []
    with pytest.raises(MediaStoppedAtLimit) as stopped:
        batches.extend(iter_frame_batches(iter_jpeg_frames(raw, fps=3, limits=limits), max_frames=4))
    assert stopped.value.code == "media_duration_limit" and stopped.value.code in KEEPS_MEASURED
    # 0 to 2 s at 3 fps: 7 frames, the last partial batch yielded before the error.
    times = [f.timestamp_ms for b in batches for f in b.frames]
    assert len(times) == 7 and times[-1] <= 2000 and [len(b.frames) for b in batches] == [4, 3]
    # The frame bound, hit by a decode, stops it the same way.
    limits = replace(LOOSE, max_frames=5)
    with pytest.raises(MediaStoppedAtLimit) as stopped:
        list(iter_jpeg_frames(raw, fps=3, limits=limits))
    assert stopped.value.code == "media_frame_limit" and "MEDIA_MAX_FRAMES" in stopped.value.message


@pytest.mark.parametrize(
    ("rate", "channels", "code"),
    [
        (1, 1, "audio_sample_rate_unsupported"),  # 20 kB that would last 2.8 h
        (7_999, 1, "audio_sample_rate_unsupported"),
        (8_000, 1, None),
        (16_000, 24, None),  # 22.2 surround
        (16_000, 65, "audio_too_many_channels"),
    ],
)
def test_audio_outside_what_audio_can_be_is_refused(tmp_path: Path, rate: int, channels: int, code: str | None) -> None:
    seconds = 10_000 if rate == 1 else 0.5
    wav = make_raw_wav(tmp_path / "a.wav", rate=rate, seconds=seconds, channels=channels)
    if code is None:
        assert len(list(iter_audio_chunks(wav))) == 1
        return
    with pytest.raises(MediaLimitError) as refused:
        next(iter_audio_chunks(wav))
    assert refused.value.code == code and str(rate if channels == 1 else channels) in refused.value.message


def test_hours_of_silence_declared_are_refused_before_any_chunk(tmp_path: Path) -> None:
    """Hume bills audio seconds, silence too: two hours of it take 1.3 MB of FLAC."""
    silence = make_flac(tmp_path / "silence.flac", 7200.0, gaps=[(0.0, 7200.0)])
    assert silence.stat().st_size < 2_000_000
    with pytest.raises(MediaLimitError) as refused:
        next(iter_audio_chunks(silence, limits=replace(LOOSE, max_duration_s=3600.0)))
    assert refused.value.code == "media_too_long" and "2.00 h" in refused.value.message


def test_audio_without_a_declared_length_is_cut_at_the_limit(tmp_path: Path) -> None:
    flac = make_flac(tmp_path / "undeclared.flac", 90.0, declare_length=False)
    limits = replace(LOOSE, max_duration_s=60.0)
    chunks: list[AudioChunk] = []
    with pytest.raises(MediaStoppedAtLimit) as stopped:
        chunks.extend(iter_audio_chunks(flac, max_bytes=960_044, search_s=1, limits=limits))
    assert stopped.value.code == "media_duration_limit"
    # Exactly 60 s of 16 kHz samples sent, which is what Hume bills.
    assert chunks[0].start_ms == 0 and chunks[-1].end_ms == 60_000
    assert sum(len(c.wav) - 44 for c in chunks) == 60 * 16_000 * 2


def test_defaults_pass_a_three_hour_recording() -> None:
    settings = Settings()
    limits = MediaLimits.from_settings(settings)
    limits.check_declared_duration(3 * 3600.0)
    limits.check_declared_frames(3 * 3600.0, settings.v1_face_fps)
    limits.check_picture(3840, 2160, 1.5, "yuv420p")
    limits.check_picture(7680, 4320, 4, "rgba")
    with pytest.raises(MediaLimitError):
        limits.check_declared_duration(4 * 3600.0 + 1)
