"""One media preparation (ours or its PyAV floor) in a fresh process, so that time and peak RSS are its own.

Usage: python -m bench.media_runner audio|audio_floor|video|video_floor PATH FPS
Prints one JSON line: {"seconds", "idle_kb", "peak_kb", "items"}; idle is this process's peak RSS after the
imports, before any decoding, so peak - idle is what the preparation itself costs.
"""

from __future__ import annotations

import json
import math
import sys
import time
from fractions import Fraction

import av
from av.video.codeccontext import VideoCodecContext

from app.media.audio_chunks import SAMPLE_RATE, iter_audio_chunks
from app.media.video_frames import iter_frame_batches, iter_jpeg_frames


def audio(path: str, fps: float) -> int:
    return sum(1 for _ in iter_audio_chunks(path))


def audio_floor(path: str, fps: float) -> int:
    """Decode and resample to 16 kHz mono s16, nothing else: what any preparation must at least do."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    n = 0
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            n += len(resampler.resample(frame))
    return n + len(resampler.resample(None))


def video(path: str, fps: float) -> int:
    return sum(len(b.frames) for b in iter_frame_batches(iter_jpeg_frames(path, fps=fps)))


def video_floor(path: str, fps: float) -> int:
    """Decode every frame, JPEG-encode the same samples at the same quality, keep nothing."""
    n = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = av.CodecContext.create("mjpeg", "w")
        assert isinstance(ctx, VideoCodecContext)
        ctx.width, ctx.height, ctx.pix_fmt = stream.width, stream.height, "yuvj420p"
        ctx.time_base = Fraction(1, 1000)
        ctx.qmin = ctx.qmax = 3
        last_slot = -1
        for frame in container.decode(stream):
            slot = math.floor((frame.time or 0.0) * fps + 1e-6)
            if slot <= last_slot:
                continue
            last_slot = slot
            image = frame.reformat(format="yuvj420p")
            n += 1
            image.pts, image.time_base = n, ctx.time_base
            for packet in ctx.encode(image):
                bytes(packet)
    return n


def high_water_kb() -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over execve, so a child of a big parent would start with
    # the parent's peak; VmHWM belongs to the new address space.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


MODES = {"audio": audio, "audio_floor": audio_floor, "video": video, "video_floor": video_floor}


def main(argv: list[str]) -> None:
    mode, path, fps = argv[0], argv[1], float(argv[2])
    idle_kb = high_water_kb()
    start = time.perf_counter()
    items = MODES[mode](path, fps)
    seconds = time.perf_counter() - start
    peak_kb = high_water_kb()
    print(json.dumps({"seconds": seconds, "idle_kb": idle_kb, "peak_kb": peak_kb, "items": items}))


if __name__ == "__main__":
    main(sys.argv[1:])
