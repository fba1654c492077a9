"""What Hume bills for a v1 file request, in its unit (`metered_seconds`), known before the request is sent.

HUME-V1-FACTS §6 "Billing (metered_seconds)": audio is billed by the seconds of audio taken in, video by 1/3 s
per frame/image taken in, with a minimum of 10 s per run that took media (applied when the run ends), and a
failed file request is billed 0. Each v1 file request is one run (§6 RUNS: "an upload becomes a run"), so the
minimum applies to every request, not to a job.
"""

from __future__ import annotations

MIN_RUN_SECONDS = 10.0
"""HUME-V1-FACTS §6: "minimum 10 s per run that took media", applied at the run's end."""
SECONDS_PER_IMAGE = 1 / 3
"""HUME-V1-FACTS §6: video is billed "1/3 s per frame/image taken in"."""


def run_seconds(media_seconds: float) -> float:
    """A run's bill from the media seconds it took in: nothing for none, else at least MIN_RUN_SECONDS."""
    return 0.0 if media_seconds <= 0 else max(MIN_RUN_SECONDS, media_seconds)


def audio_request_seconds(duration_ms: int) -> float:
    """One audio file request of `duration_ms` of audio (HUME-V1-FACTS §6: "audio seconds taken in")."""
    return run_seconds(duration_ms / 1000)


def video_request_seconds(images: int) -> float:
    """One video file request of `images` JPEG images."""
    return run_seconds(images * SECONDS_PER_IMAGE)
