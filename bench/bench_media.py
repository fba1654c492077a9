"""Media preparation for Hume v1 against its PyAV floor, each run in its own process.

media_audio_prep: one hour of AAC audio to 16 kHz WAV chunks, as a ratio to decode + resample alone.
media_video_prep: one hour of 720p H.264 to 3 fps JPEG batches, as a ratio to decode + the same JPEG encodes
alone; and the preparing process's peak RSS over the same process idle (target: under 300 MB).
The hour of video is encoded at 6 fps (libx264 ultrafast, moving bar): at 30 fps its generation alone takes
minutes on a shared 2-core machine, while the cost measured, sampling at 3 fps, is dominated by the JPEG
encodes either way. MEDIA_BENCH_SECONDS shortens both media for a quick run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import Context
from tests import media_factory

FPS = 3.0
_ROOT = Path(__file__).resolve().parent.parent


def _measure(mode: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "bench.media_runner", mode, str(path), str(FPS)],
        cwd=_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> None:
    seconds = float(os.environ.get("MEDIA_BENCH_SECONDS", "3600"))
    with tempfile.TemporaryDirectory(prefix="bench-media-") as directory:
        started = time.perf_counter()
        sound = media_factory.make_audio_only(Path(directory) / "hour.m4a", seconds, gaps=[(60.0, 61.0)])
        print(f"(generated {seconds:g} s of AAC in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
        ours, floor = _measure("audio", sound), _measure("audio_floor", sound)
        ctx.report(
            "media_audio_prep",
            seconds / ours["seconds"],
            "x_realtime",
            baseline=seconds / floor["seconds"],
            baseline_name="pyav_decode_resample",
        )
        sound.unlink()

        started = time.perf_counter()
        film = media_factory.make_mp4(Path(directory) / "hour.mp4", seconds, size=(1280, 720), fps=6, audio=False)
        print(f"(generated {seconds:g} s of 720p video in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
        ours, floor = _measure("video", film), _measure("video_floor", film)
        if ours["items"] != floor["items"]:
            raise AssertionError(f"prepared {ours['items']} frames, the floor encoded {floor['items']}")
        ctx.report(
            "media_video_prep",
            seconds / ours["seconds"],
            "x_realtime",
            baseline=seconds / floor["seconds"],
            baseline_name="pyav_decode_jpeg_encode",
        )
        ctx.report(
            "media_video_prep_rss_over_idle",
            (ours["peak_kb"] - ours["idle_kb"]) / 1024,
            "MB",
            baseline=ours["idle_kb"] / 1024,
            baseline_name="idle_process_rss",
        )
