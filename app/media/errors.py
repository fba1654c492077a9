"""Why a medium cannot be prepared; each message is one line a user can act on.

MediaError
 +-- MediaDecodeError   not a media file, truncated or corrupt
 +-- NoAudioStream      prosody asked of a file with no sound
 +-- NoVideoStream      face asked of a file with no picture (e.g. audio only)
 +-- MediaLimitError    over a bound of app.media.limits (see there): refused before anything is decoded or sent,
      +-- MediaStoppedAtLimit   ... or, when only decoding found it, stopped there: what came before stands
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import av.stream


class MediaError(Exception):
    code = "media_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MediaDecodeError(MediaError):
    code = "media_undecodable"


class NoAudioStream(MediaError):
    code = "no_audio_stream"


class NoVideoStream(MediaError):
    code = "no_video_stream"


class MediaLimitError(MediaError):
    """The medium is over a bound; `code` names which (app.media.limits), the message the setting that raises it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MediaStoppedAtLimit(MediaLimitError):
    """Decoding reached a bound the headers did not announce: everything yielded before it stands."""


STOPPED_AT_DURATION = "media_duration_limit"
STOPPED_AT_FRAMES = "media_frame_limit"
KEEPS_MEASURED = frozenset({STOPPED_AT_DURATION, STOPPED_AT_FRAMES})
"""Codes of MediaStoppedAtLimit: a medium's outcome with one of them still has its measured chunks ingested."""


@contextlib.contextmanager
def open_input(path: str | Path, options: dict[str, str] | None = None) -> Iterator[av.container.InputContainer]:
    """Open a medium for decoding; any FFmpeg failure, at open or later while decoding, is a MediaDecodeError.

    `options` reach the decoders FFmpeg opens while probing the streams (`max_pixels`: the probe decodes a
    first frame of most video streams, before any header can be checked).
    """
    try:
        container = av.open(str(path), mode="r", options=options or {})
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaDecodeError(
            f"the file is not a readable audio or video file, or it is truncated ({_reason(exc)})"
        ) from None
    try:
        yield container
    except av.FFmpegError as exc:
        raise MediaDecodeError(f"the file is truncated or corrupt ({_reason(exc)})") from None
    finally:
        container.close()


def declared_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def check_complete(container: av.container.InputContainer, stream: av.stream.Stream, reached_s: float | None) -> None:
    """Raise MediaDecodeError when decoding ended well before the duration the file declares.

    A file cut short (an interrupted upload) often decodes without any error up to where the data stops;
    without this check its first half would pass for the whole.
    """
    declared = declared_seconds(container, stream)
    if declared is None or reached_s is None:
        return
    if reached_s < declared - max(1.0, 0.02 * declared):
        raise MediaDecodeError(f"the file is truncated: it decodes up to {reached_s:.1f} s of its {declared:.1f} s")


def _reason(exc: Exception) -> str:
    return (getattr(exc, "strerror", None) or str(exc))[:200]
