"""What Hume bills for a v1 run, in its unit (`metered_seconds`): a file request's bill is known before it is
sent, a realtime session's from the media relayed to it.

HUME-V1-FACTS §6 "Billing (metered_seconds)": audio is billed by the seconds of audio taken in, video by 1/3 s
per frame/image taken in, with a minimum of 10 s per run that took media (applied when the run ends), and a
failed file request is billed 0. Each v1 file request is one run (§6 RUNS: "an upload becomes a run"), so the
minimum applies to every request, not to a job; a realtime session is one run too (§8: `run_id = session_id`),
billed for its frames together, the minimum once at its end.
"""

from __future__ import annotations

from app.hume.realtime_client import AUDIO_BYTES_PER_SECOND

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


def realtime_frame_seconds(medium: str, frame_bytes: int) -> float:
    """What one binary frame a realtime session takes in adds to its bill, before the run's minimum: its seconds
    of audio (realtime audio's format fixes the bytes a second), or 1/3 s for a video frame whatever its size.
    A session's bill is `run_seconds` of their sum."""
    if medium == "audio":
        return frame_bytes / AUDIO_BYTES_PER_SECOND
    return SECONDS_PER_IMAGE
