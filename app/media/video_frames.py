"""A video's frames sampled at a steady rate, as JPEGs within Hume v1's limits, batched into uploads.

Hume v1 takes JPEG images of at most 2 MB and 3840x2160 each, 25 MB a request (HUME.md §9). Frames are
sampled at `fps` (3 by default, as the batch face model did): the first decoded frame of each 1/fps slot
is kept, so a frame is never repeated and a low-rate source yields all its frames. A frame over 3840x2160 is
scaled down to fit; a JPEG over the byte limit is encoded again at a coarser quality, then smaller.
Everything streams: one decoded frame and one batch of JPEGs are in memory at a time.

A truncated or corrupt file: if the container cannot be opened (an MP4 whose index was at its end), the
first call raises MediaDecodeError. Otherwise the frames before the damage are yielded, then MediaDecodeError
is raised: by FFmpeg when the data is corrupt, or by us when decoding ended more than a second (or 2 %)
before the duration the file declares (an MP4 with its index first, cut short, decodes without any error).
The caller decides whether a partial result is worth keeping.

Bounds (app.media.limits): a picture over MEDIA_MAX_PIXELS or MEDIA_MAX_FRAME_BYTES, or a duration or a frame
count over MEDIA_MAX_DURATION_S or MEDIA_MAX_FRAMES, that the headers declare is refused by the first call,
before a frame is decoded; one that only decoding finds raises MediaStoppedAtLimit after the frames before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.stream
from av.video.codeccontext import VideoCodecContext
from av.video.stream import VideoStream

from app.media.errors import (
    MediaDecodeError,
    MediaStoppedAtLimit,
    NoVideoStream,
    check_complete,
    declared_seconds,
    open_input,
)
from app.media.limits import DECODE_THREADS, DEFAULT_LIMITS, MediaLimits

MAX_WIDTH, MAX_HEIGHT = 3840, 2160
MAX_JPEG_BYTES = 2_000_000
DEFAULT_BATCH_BYTES = 24_000_000
# Hume's docs state no image count; a bounded batch keeps one failed request cheap to retry.
DEFAULT_BATCH_FRAMES = 100
# Multipart framing per image (boundary, headers), so that a batch's upload, not just its JPEGs, fits.
PART_OVERHEAD_BYTES = 512
# Coarser JPEG quantiser (qscale 2 = best, 31 = worst), then smaller images, until a frame fits the limit.
_FALLBACKS = ((1.0, 10), (1.0, 20), (0.75, 20), (0.5, 20), (0.35, 31), (0.25, 31))


@dataclass(frozen=True)
class JpegFrame:
    index: int
    """Position among the sampled frames, from 0."""
    source_frame: int
    """Position among all decoded frames of the stream, from 0."""
    timestamp_ms: int
    width: int
    height: int
    jpeg: bytes


@dataclass(frozen=True)
class FrameBatch:
    index: int
    frames: tuple[JpegFrame, ...]

    @property
    def jpeg_bytes(self) -> int:
        return sum(len(f.jpeg) for f in self.frames)


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def fit_within(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    if width <= max_width and height <= max_height:
        return width, height
    scale = min(max_width / width, max_height / height)
    return _even(width * scale), _even(height * scale)


class JpegEncoder:
    """MJPEG encoding at a fixed quantiser; one codec context per (size, quality), reused across frames."""

    def __init__(self, quality: int) -> None:
        self.quality = quality
        self._contexts: dict[tuple[int, int, int], VideoCodecContext] = {}
        self._pts = 0

    def _context(self, width: int, height: int, quality: int) -> VideoCodecContext:
        key = (width, height, quality)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = av.CodecContext.create("mjpeg", "w")
            assert isinstance(ctx, VideoCodecContext)
            ctx.width, ctx.height = width, height
            ctx.pix_fmt = "yuvj420p"
            ctx.time_base = Fraction(1, 1000)
            # qmin = qmax pins the quantiser: a fixed quality, instead of rate control aiming at a bit rate.
            ctx.qmin = ctx.qmax = quality
            self._contexts[key] = ctx
        return ctx

    def encode(self, frame: av.VideoFrame, width: int, height: int, quality: int) -> bytes:
        ctx = self._context(width, height, quality)
        image = frame.reformat(width=width, height=height, format="yuvj420p")
        # The encoder refuses non-increasing timestamps; ours only order the calls.
        self._pts += 1
        image.pts = self._pts
        image.time_base = ctx.time_base
        return b"".join(bytes(p) for p in ctx.encode(image))

    def fit(self, frame: av.VideoFrame, max_width: int, max_height: int, max_bytes: int) -> tuple[bytes, int, int]:
        width, height = fit_within(frame.width, frame.height, max_width, max_height)
        jpeg = self.encode(frame, width, height, self.quality)
        for scale, quality in _FALLBACKS:
            if len(jpeg) <= max_bytes:
                break
            width, height = _even(width * scale), _even(height * scale)
            jpeg = self.encode(frame, width, height, quality)
        if len(jpeg) > max_bytes:
            raise MediaDecodeError(f"a frame could not be made smaller than {max_bytes} bytes as JPEG")
        return jpeg, width, height


def _video_stream(container: av.container.InputContainer) -> VideoStream:
    for stream in container.streams.video:
        # Cover art in an audio file is a one-picture "video" stream, not a video to measure faces in.
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise NoVideoStream("the file has no video stream, so there are no faces to measure (is it audio only?)")


def _bytes_per_pixel(pix_fmt: str) -> float:
    return av.VideoFormat(pix_fmt).padded_bits_per_pixel / 8


def iter_jpeg_frames(
    path: str | Path,
    *,
    fps: float = 3.0,
    quality: int = 3,
    max_width: int = MAX_WIDTH,
    max_height: int = MAX_HEIGHT,
    max_jpeg_bytes: int = MAX_JPEG_BYTES,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> Iterator[JpegFrame]:
    """Yield `path`'s sampled frames as JPEGs (see the module docstring).

    Raises MediaDecodeError, NoVideoStream, MediaLimitError (before any frame) or MediaStoppedAtLimit.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    encoder = JpegEncoder(quality)
    with open_input(path, limits.decoder_options) as container:
        stream = _video_stream(container)
        ctx = stream.codec_context
        # No size after the probe: the probe's decoder refused the picture (over max_pixels) or saw none yet.
        pix_fmt = ctx.pix_fmt
        announced = bool(ctx.width and ctx.height and pix_fmt)
        if ctx.width and ctx.height and pix_fmt:
            limits.check_picture(ctx.width, ctx.height, _bytes_per_pixel(pix_fmt), pix_fmt)
        declared = declared_seconds(container, stream)
        limits.check_declared_duration(declared)
        limits.check_declared_frames(declared, fps)
        stream.thread_type = "AUTO"
        ctx.thread_count = DECODE_THREADS
        ctx.options = limits.decoder_options
        max_frames = limits.frames_for(fps)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        first: float | None = None
        at: float | None = None
        last_slot = -1
        index = 0
        size = (ctx.width, ctx.height) if announced else (0, 0)
        frames = container.decode(stream)
        source_frame = -1
        while True:
            try:
                frame = next(frames, None)
            except av.error.ArgumentError:
                # EINVAL from a decoder is how FFmpeg refuses a picture over max_pixels.
                raise limits.picture_refused_by_decoder() from None
            if frame is None:
                break
            source_frame += 1
            if (frame.width, frame.height) != size:
                size = (frame.width, frame.height)
                limits.check_picture(frame.width, frame.height, _bytes_per_pixel(frame.format.name), frame.format.name)
            if source_frame >= limits.max_decoded_frames:
                raise limits.stopped_at_decoded_frames()
            at = frame.time if frame.time is not None else source_frame / rate
            if first is None:
                first = at
            if at - first > limits.max_duration_s:
                raise limits.stopped_at_duration()
            # The tolerance absorbs timestamps like 0.33333 landing just below a slot's boundary.
            slot = math.floor((at - first) * fps + 1e-6)
            if slot <= last_slot:
                continue
            if index >= max_frames:
                raise limits.stopped_at_frames(fps)
            last_slot = slot
            jpeg, width, height = encoder.fit(frame, max_width, max_height, max_jpeg_bytes)
            yield JpegFrame(
                index=index,
                source_frame=source_frame,
                timestamp_ms=max(0, round(at * 1000)),
                width=width,
                height=height,
                jpeg=jpeg,
            )
            index += 1
        check_complete(container, stream, at)


def iter_frame_batches(
    frames: Iterable[JpegFrame],
    *,
    max_bytes: int = DEFAULT_BATCH_BYTES,
    max_frames: int = DEFAULT_BATCH_FRAMES,
) -> Iterator[FrameBatch]:
    """Group frames, in order, into batches of at most `max_frames` whose upload stays under `max_bytes`."""
    batch: list[JpegFrame] = []
    size = 0
    index = 0
    try:
        for frame in frames:
            cost = len(frame.jpeg) + PART_OVERHEAD_BYTES
            if cost > max_bytes:
                raise ValueError(f"a {len(frame.jpeg)} byte frame cannot fit a {max_bytes} byte batch")
            if batch and (size + cost > max_bytes or len(batch) >= max_frames):
                yield FrameBatch(index=index, frames=tuple(batch))
                index += 1
                batch, size = [], 0
            batch.append(frame)
            size += cost
    except MediaStoppedAtLimit:
        # The frames up to a bound are measured: the last, partial batch goes out before the error.
        if batch:
            yield FrameBatch(index=index, frames=tuple(batch))
        raise
    if batch:
        yield FrameBatch(index=index, frames=tuple(batch))
