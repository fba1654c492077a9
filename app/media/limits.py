"""What one source may cost: bounds checked in a file's headers before anything is decoded or sent to Hume,
and again while decoding, because headers can lie or be missing.

Memory. A decoded picture costs width x height x its pixel format's bytes per pixel, whatever the file's size
(a 3 MB MOV of four 16000x16000 PNGs decodes to 768 MB a frame). `max_pixels` is checked against the stream's
header and also handed to FFmpeg's decoders (`max_pixels`, enforced where a decoder learns a picture's size,
before it allocates it), both for the probe FFmpeg runs when opening a file and for our decode: a container
that declares a small picture around a huge one is refused by the decoder. `max_frame_bytes` bounds the
decoded picture's bytes from its pixel format. A decode runs at most `DECODE_THREADS` frame threads, each
holding frames of its own, so a many-core machine does not multiply a decode's memory.

Cost. Hume bills audio seconds and 1/3 s per image (HUME-V1-FACTS §6), so a source's duration and its
number of sampled frames are bounded: a header that declares more is refused before any upload; a decode that
runs past a bound (no duration in the header, or a false one) stops there, and what was sent before stands.

Sample rates outside what audio is recorded at, and absurd channel counts, are refused from the header.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.media.errors import STOPPED_AT_DURATION, STOPPED_AT_FRAMES, MediaLimitError, MediaStoppedAtLimit

# Telephone audio (8 kHz) is the lowest rate speech is recorded at; below it a header is a trick to
# stretch a few kB into hours (a 20 kB WAV declaring 1 Hz lasts 2.8 h).
MIN_SAMPLE_RATE = 8_000
# DXD's doubled rate, the highest any recording format uses; beyond it the resampler's work is unbounded.
MAX_SAMPLE_RATE = 768_000
# 22.2 surround (24 channels) is the most any broadcast format carries; 64 leaves room for ambisonic
# recordings. WAV can declare 65,535.
MAX_CHANNELS = 64
# Samples in one decoded audio frame (FFmpeg's `max_samples`): 5.5 s at 48 kHz, above any codec's frame (FLAC's
# largest block is 65,535 samples); with MAX_CHANNELS of doubles, 128 MiB.
MAX_FRAME_SAMPLES = 1 << 18
# Frame threads per decode: each holds its own frames, and FFmpeg's automatic count is one per core.
DECODE_THREADS = 2
# Source frames decoded per second of the duration bound: above any camera's slow-motion rate (240 fps), so
# only a file whose frames all carry one timestamp (a decode that would never reach the duration) meets it.
MAX_SOURCE_FPS = 300


@dataclass(frozen=True)
class MediaLimits:
    max_pixels: int
    max_frame_bytes: int
    max_duration_s: float
    max_frames: int

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaLimits:
        return cls(
            max_pixels=settings.media_max_pixels,
            max_frame_bytes=settings.media_max_frame_bytes,
            max_duration_s=settings.media_max_duration_s,
            max_frames=settings.media_max_frames,
        )

    @property
    def decoder_options(self) -> dict[str, str]:
        """For every decoder FFmpeg opens, the probe's (av.open) and ours: a picture or an audio frame over the
        bounds is refused where the decoder learns its size, before it is allocated."""
        return {"max_pixels": str(self.max_pixels), "max_samples": str(MAX_FRAME_SAMPLES)}

    def check_picture(self, width: int, height: int, bytes_per_pixel: float, pix_fmt: str) -> None:
        pixels = width * height
        if pixels > self.max_pixels:
            raise MediaLimitError(
                "media_frame_too_large",
                f"the video's pictures are {width}x{height} ({pixels:,} pixels), over the limit of"
                f" {self.max_pixels:,} pixels (MEDIA_MAX_PIXELS raises it)",
            )
        size = int(pixels * bytes_per_pixel)
        if size > self.max_frame_bytes:
            raise MediaLimitError(
                "media_frame_too_large",
                f"the video's pictures ({width}x{height}, {pix_fmt}) decode to {size:,} bytes each, over the"
                f" limit of {self.max_frame_bytes:,} bytes (MEDIA_MAX_FRAME_BYTES raises it)",
            )

    def picture_refused_by_decoder(self) -> MediaLimitError:
        """The decoder refused a picture over `max_pixels` (the probe's refusal leaves the header without a size)."""
        return MediaLimitError(
            "media_frame_too_large",
            f"the video holds pictures over the limit of {self.max_pixels:,} pixels, refused before decoding"
            " (MEDIA_MAX_PIXELS raises it)",
        )

    def check_declared_duration(self, seconds: float | None) -> None:
        if seconds is not None and seconds > self.max_duration_s:
            raise MediaLimitError(
                "media_too_long",
                f"the file declares {_duration(seconds)}, over the limit of {_duration(self.max_duration_s)}"
                " a source (MEDIA_MAX_DURATION_S raises it); nothing was sent to Hume",
            )

    def stopped_at_duration(self) -> MediaStoppedAtLimit:
        return MediaStoppedAtLimit(
            STOPPED_AT_DURATION,
            f"decoding ran past the limit of {_duration(self.max_duration_s)} a source (MEDIA_MAX_DURATION_S"
            " raises it): measured up to there, the rest was not sent",
        )

    def frames_for(self, fps: float) -> int:
        """The most frames sampled at `fps`: MEDIA_MAX_FRAMES, or fewer when the duration bound comes first."""
        return min(self.max_frames, int(self.max_duration_s * fps) + 1)

    def check_declared_frames(self, seconds: float | None, fps: float) -> None:
        if seconds is None:
            return
        frames = int(seconds * fps) + 1
        if frames > self.max_frames:
            raise MediaLimitError(
                "media_too_many_frames",
                f"the video declares {_duration(seconds)}, {frames:,} frames at {fps:g} fps, over the limit of"
                f" {self.max_frames:,} frames a source (MEDIA_MAX_FRAMES raises it); nothing was sent to Hume",
            )

    def stopped_at_frames(self, fps: float) -> MediaStoppedAtLimit:
        return MediaStoppedAtLimit(
            STOPPED_AT_FRAMES,
            f"the video reached the limit of {self.frames_for(fps):,} frames a source at {fps:g} fps"
            " (MEDIA_MAX_FRAMES and MEDIA_MAX_DURATION_S raise it): measured up to there, the rest was not sent",
        )

    @property
    def max_decoded_frames(self) -> int:
        return int(self.max_duration_s * MAX_SOURCE_FPS)

    def stopped_at_decoded_frames(self) -> MediaStoppedAtLimit:
        return MediaStoppedAtLimit(
            STOPPED_AT_FRAMES,
            f"the video has more than {self.max_decoded_frames:,} frames ({MAX_SOURCE_FPS} a second over"
            f" {_duration(self.max_duration_s)}, MEDIA_MAX_DURATION_S raises it): measured up to there",
        )


def check_audio_format(sample_rate: int, channels: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise MediaLimitError(
            "audio_sample_rate_unsupported",
            f"the audio declares {sample_rate} Hz; audio is recorded at {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}"
            " Hz (a lower rate stretches a small file into hours of billed audio)",
        )
    if channels > MAX_CHANNELS:
        raise MediaLimitError(
            "audio_too_many_channels",
            f"the audio declares {channels} channels, over the {MAX_CHANNELS} any recording format carries",
        )


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h ({seconds:,.0f} s)"
    return f"{seconds:,.1f} s"


DEFAULT_LIMITS = MediaLimits.from_settings(Settings())
"""The settings' defaults, for callers without settings (benchmarks, tools)."""
