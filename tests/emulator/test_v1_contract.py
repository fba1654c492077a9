"""Contract tests: the emulator's v1 Expression Measurement API holds Hume's documented limits, defaults and
errors (HUME-V1-FACTS.md, cited as §N on each test; the same facts are in /work/shared/hume/*.json).

Driven over the emulator's real socket (`cloud_url`), with the official SDK `hume_expression_measurement`
where it can express the request and raw httpx where it cannot (unknown fields, exact body sizes).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import timedelta
from fractions import Fraction
from typing import Any

import av
import httpx
import pytest
from hume_expression_measurement import AsyncExpressionMeasurementClient
from hume_expression_measurement.core.api_error import ApiError
from hume_expression_measurement.errors import (
    BadRequestError,
    ContentTooLargeError,
    ForbiddenError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from hume_expression_measurement.types import (
    AudioFileConfig,
    AudioRunConfig,
    VideoFileConfig,
    VideoFileConfigFace,
    VideoRunConfig,
)

from app.emulator import EmulatorConfig
from app.emulator.cli import build_parser, config_from_args
from app.emulator.expression_labels import (
    AUDIO_EXPRESSIONS,
    VIDEO_DESCRIPTIONS,
    VIDEO_EXPRESSIONS,
    VOICE_ATTRIBUTES,
)
from app.emulator.rate_limit import RequestLog
from app.emulator.testing import EmulatorServer

from .conftest import API_KEY
from .media import jpeg, jpeg_with_faces, wav_tones, with_segment
from .test_v1 import v1_client

AUDIO = "/v1/expression/audio/file"
VIDEO = "/v1/expression/video/file"
BOUNDARY = "contract-test-boundary"
SILENCE = wav_tones(1.0, [])


@pytest.fixture
def v1(emu: EmulatorServer) -> AsyncExpressionMeasurementClient:
    return v1_client(emu.cloud_url, max_retries=0)


def wav(data: bytes) -> tuple[str, bytes, str]:
    return ("speech.wav", data, "audio/wav")


def multipart(*parts: tuple[str, str | None, str, bytes]) -> bytes:
    """A multipart/form-data body of (name, filename, content type, data) parts, byte for byte."""
    out = bytearray()
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        out += data + b"\r\n"
    return bytes(out + f"--{BOUNDARY}--\r\n".encode())


async def post(emu: EmulatorServer, path: str, body: bytes, content_type: str | None = None) -> httpx.Response:
    headers = {"X-Hume-Api-Key": API_KEY, "Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}"}
    async with httpx.AsyncClient(base_url=emu.cloud_url, timeout=120) as http:
        return await http.post(path, content=body, headers=headers)


def audio_with_config(config: bytes) -> bytes:
    return multipart(("file", "a.wav", "audio/wav", SILENCE), ("config", None, "application/json", config))


def video_with_config(config: bytes) -> bytes:
    return multipart(("file", "a.jpg", "image/jpeg", jpeg()), ("config", None, "application/json", config))


def refused(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error in v1's shape (§5: {"type": "error", "code", "message", "request_id"})."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "code", "message", "request_id"}, body
    assert body["type"] == "error" and body["code"] == code and body["request_id"], body
    message: str = body["message"]
    return message


def big_faces(spec: str, width: int = 640, height: int = 480) -> bytes:
    return jpeg_with_faces(spec, width=width, height=height)


def jpeg_of_size(total: int) -> bytes:
    """A valid JPEG of exactly `total` bytes (APP15 padding segments)."""
    image = jpeg()
    left = total - len(image)
    while left:
        payload = min(60_000, left - 4)
        if 0 < left - payload - 4 < 4:  # a segment needs 4 bytes of header: leave room for a last one
            payload -= 4
        image = with_segment(image, 0xEF, bytes(payload))
        left -= payload + 4
    assert len(image) == total
    return image


def jpeg_444(width: int, height: int) -> bytes:
    """A flat JPEG of any size, odd ones included (4:4:4 has no chroma subsampling to round)."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj444p"
    codec.time_base = Fraction(1, 25)
    frame = av.VideoFrame(width, height, "yuvj444p")
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def encoded(container: str, codec: str, rate: int = 16_000) -> bytes:
    """One second of silence compressed by PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame(format="s16", layout="mono", samples=rate)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


def png() -> bytes:
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = 64, 48, "rgb24"
    codec.time_base = Fraction(1, 25)
    frame = av.VideoFrame(64, 48, "rgb24")
    frame.planes[0].update(bytes(frame.planes[0].buffer_size))
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


# --- §3 config: measurement_timer_ms -------------------------------------------------------------------------


@pytest.mark.parametrize(("timer", "accepted"), [(2999, False), (3000, True), (10_000, True), (10_001, False)])
async def test_measurement_timer_ms_is_3000_to_10000(
    v1: AsyncExpressionMeasurementClient, timer: int, accepted: bool
) -> None:
    # §3: measurement_timer_ms is 3000-10000 ms of speech; out of range gets config_invalid (LIM/LE).
    config = AudioFileConfig(measurement_timer_ms=timer)
    if accepted:
        result = await v1.audio.measure(file=wav(SILENCE), config=config)
        run = await v1.runs.get(result.run_id)
        assert isinstance(run.config, AudioRunConfig) and run.config.measurement_timer_ms == timer
        return
    with pytest.raises(BadRequestError) as err:
        await v1.audio.measure(file=wav(SILENCE), config=config)
    assert err.value.body.code == "config_invalid" and "measurement_timer_ms" in err.value.body.message
    assert (await v1.runs.list()).runs == []  # §6 RUNS: refused before measurement, so no run


async def test_measurement_timer_defaults_to_3000(v1: AsyncExpressionMeasurementClient) -> None:
    # §3: default 3000; §6: the run's config includes "defaults for any settings the request did not set".
    result = await v1.audio.measure(file=wav(wav_tones(8.5, [(0.5, 8.0)])))
    (utterance,) = result.utterances
    intervals = [m.audio_end_ms - utterance.audio_start_ms for m in result.measurements if m.trigger == "interval"]
    assert intervals == [3000, 6000]
    run = await v1.runs.get(result.run_id)
    assert isinstance(run.config, AudioRunConfig) and run.config.measurement_timer_ms == 3000


async def test_unknown_audio_config_field_is_refused_as_hume_words_it(emu: EmulatorServer) -> None:
    # §3 "Unknown fields": ERR's example, verbatim (400 config_invalid).
    response = await post(emu, AUDIO, audio_with_config(b'{"timer_ms":5000}'))
    assert refused(response, 400, "config_invalid") == (
        "the config part is not valid: unknown field `timer_ms`, expected `measurement_timer_ms` at line 1 column 11"
    )


@pytest.mark.parametrize(
    ("config", "named"),
    [
        pytest.param(b'{"faces": {}}', "unknown field `faces`, expected `face` or `face_state`", id="top-level"),
        pytest.param(b'{"image": {"type": "image/jpeg"}}', "unknown field `image`", id="realtime-only"),
        pytest.param(
            b'{"face": {"threshold": 0.9, "min_face_size": 10}}',
            "unknown field `min_face_size`, expected one of `threshold`, `min_size`, `return_face_state`",
            id="in-face",
        ),
    ],
)
async def test_unknown_video_config_fields_are_refused(emu: EmulatorServer, config: bytes, named: str) -> None:
    # §3: video config is face {threshold, min_size, return_face_state} and face_state; unknown fields are
    # refused with config_invalid (ERR's example is for audio; same rule).
    assert named in refused(await post(emu, VIDEO, video_with_config(config)), 400, "config_invalid")


async def test_every_known_video_field_is_accepted(emu: EmulatorServer) -> None:
    # §3: the complete video upload config.
    config = b'{"face": {"threshold": 0.5, "min_size": 30, "return_face_state": true}, "face_state": "x"}'
    response = await post(emu, VIDEO, video_with_config(config))
    assert response.status_code == 200 and response.json()["face_state"]


@pytest.mark.parametrize(
    ("path", "config", "named"),
    [
        pytest.param(AUDIO, b'{"measurement_timer_ms": "3000"}', "measurement_timer_ms", id="timer-string"),
        pytest.param(AUDIO, b'{"measurement_timer_ms": 3000.5}', "measurement_timer_ms", id="timer-fraction"),
        pytest.param(VIDEO, b'{"face": {"min_size": 60.5}}', "face.min_size", id="min-size-fraction"),
        pytest.param(VIDEO, b'{"face": {"threshold": "high"}}', "face.threshold", id="threshold-string"),
        pytest.param(VIDEO, b'{"face": {"return_face_state": 1}}', "face.return_face_state", id="state-flag"),
        pytest.param(VIDEO, b'{"face": 1}', "face", id="face-not-object"),
        pytest.param(AUDIO, b"[3000]", "JSON object", id="not-object"),
        pytest.param(AUDIO, b'{"measurement_timer_ms": 3000', "line 1", id="not-json"),
    ],
)
async def test_config_values_of_the_wrong_type_are_refused(
    emu: EmulatorServer, path: str, config: bytes, named: str
) -> None:
    # §3: measurement_timer_ms and min_size are ints, threshold a float, return_face_state a bool.
    body = audio_with_config(config) if path == AUDIO else video_with_config(config)
    assert named in refused(await post(emu, path, body), 400, "config_invalid")


async def test_explicit_nulls_are_refused(v1: AsyncExpressionMeasurementClient) -> None:
    # §3 is silent on null for optional fields; the emulator refuses them (expression_config.py says why), so
    # a client must omit unset fields. The SDK sends null for a field explicitly set to None, omits it otherwise.
    cases: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (lambda: v1.audio.measure(file=wav(SILENCE), config=AudioFileConfig(measurement_timer_ms=None)),
         "measurement_timer_ms"),
        (lambda: v1.video.measure(file=[jpeg()], config=VideoFileConfig(face=VideoFileConfigFace(threshold=None))),
         "face.threshold"),
        (lambda: v1.video.measure(file=[jpeg()], config=VideoFileConfig(face=VideoFileConfigFace(min_size=None))),
         "face.min_size"),
        (lambda: v1.video.measure(file=[jpeg()], config=VideoFileConfig(face_state=None)), "face_state"),
    ]  # fmt: skip
    for call, field in cases:
        with pytest.raises(BadRequestError) as err:
            await call()
        assert err.value.body.code == "config_invalid" and f"`{field}` is null" in err.value.body.message
    unset = await v1.audio.measure(file=wav(SILENCE), config=AudioFileConfig())  # sent as {}
    assert unset.received.audio_duration_ms == 1000


# --- §3 config: face threshold and min_size -------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "accepted"), [(-0.01, False), (0.0, True), (1.0, True), (1.01, False)])
async def test_face_threshold_is_0_to_1(v1: AsyncExpressionMeasurementClient, threshold: float, accepted: bool) -> None:
    # §3: face.threshold is a float 0-1; a face is measured if its confidence >= threshold.
    image = big_faces("faces=2 confidence=0.05")
    config = VideoFileConfig(face=VideoFileConfigFace(threshold=threshold))
    if not accepted:
        with pytest.raises(BadRequestError) as err:
            await v1.video.measure(file=[image], config=config)
        assert err.value.body.code == "config_invalid" and "face.threshold" in err.value.body.message
        return
    result = await v1.video.measure(file=[image], config=config)
    measured = [f for f in result.measurements[0].faces if f.face_id is not None]
    assert len(measured) == (2 if threshold == 0.0 else 0)
    run = await v1.runs.get(result.run_id)
    assert isinstance(run.config, VideoRunConfig) and run.config.face.threshold == threshold


async def test_face_threshold_defaults_to_0_9(v1: AsyncExpressionMeasurementClient) -> None:
    # §3: default 0.9, kept if confidence >= threshold.
    below, at = big_faces("faces=1 confidence=0.8999"), big_faces("faces=1 confidence=0.9")
    result = await v1.video.measure(file=[below, at])
    assert [len(m.faces) for m in result.measurements] == [0, 1]
    assert result.measurements[1].faces[0].confidence == 0.9
    lower = await v1.video.measure(file=[below], config=VideoFileConfig(face=VideoFileConfigFace(threshold=0.8999)))
    assert len(lower.measurements[0].faces) == 1
    run = await v1.runs.get(result.run_id)
    assert isinstance(run.config, VideoRunConfig) and run.config.face.threshold == 0.9
    # SDK face_config.py: the threshold is "reported rounded to four decimal places".
    odd = await v1.video.measure(file=[at], config=VideoFileConfig(face=VideoFileConfigFace(threshold=0.33333)))
    odd_run = await v1.runs.get(odd.run_id)
    assert isinstance(odd_run.config, VideoRunConfig) and odd_run.config.face.threshold == 0.3333


@pytest.mark.parametrize(("min_size", "accepted"), [(0, False), (1, True)])
async def test_face_min_size_is_at_least_1(v1: AsyncExpressionMeasurementClient, min_size: int, accepted: bool) -> None:
    # §3: face.min_size is an integer >= 1 px.
    config = VideoFileConfig(face=VideoFileConfigFace(min_size=min_size))
    if not accepted:
        with pytest.raises(BadRequestError) as err:
            await v1.video.measure(file=[jpeg()], config=config)
        assert err.value.body.code == "config_invalid" and "face.min_size" in err.value.body.message
        return
    result = await v1.video.measure(file=[jpeg_with_faces("faces=2")], config=config)  # 64 and 60 px faces
    assert [f.face_id for f in result.measurements[0].faces] == [0, 1]
    run = await v1.runs.get(result.run_id)
    assert isinstance(run.config, VideoRunConfig) and run.config.face.min_size == 1


async def test_face_min_size_defaults_to_60(v1: AsyncExpressionMeasurementClient) -> None:
    # §3: default 60 px; a face is skipped if its box's shorter side is under it. Slot 0's side is 0.8 of a
    # quarter of the width: 60.0 px at 300 px wide, 59.2 px at 296.
    sixty, under = big_faces("faces=1", 300, 240), big_faces("faces=1", 296, 240)
    result = await v1.video.measure(file=[sixty, under])
    first, second = result.measurements
    (face,) = first.faces
    assert min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1]) == pytest.approx(60.0)
    assert second.faces == []
    smaller = await v1.video.measure(file=[under], config=VideoFileConfig(face=VideoFileConfigFace(min_size=59)))
    assert len(smaller.measurements[0].faces) == 1
    run = await v1.runs.get(result.run_id)
    assert isinstance(run.config, VideoRunConfig) and run.config.face.min_size == 60


# --- §4 limits ------------------------------------------------------------------------------------------------


async def test_request_body_limit_is_25_000_000_bytes(emu: EmulatorServer) -> None:
    # §4: upload size 25 MB for the whole multipart body (25,000,000 B); over it: audio_too_long.
    def body(pcm_bytes: int, name: str) -> bytes:
        return multipart(("file", name, "application/octet-stream", bytes(pcm_bytes)))

    overhead = len(body(0, "a.pcm"))
    name = "a.pcm" if (25_000_000 - overhead) % 2 == 0 else "ab.pcm"
    pcm = 25_000_000 - len(body(0, name))
    at_limit = body(pcm, name)
    assert len(at_limit) == 25_000_000 and pcm % 2 == 0
    ok = await post(emu, AUDIO, at_limit)
    assert ok.status_code == 200 and ok.json()["received"]["audio_duration_ms"] == pcm // 2 * 1000 // 16_000
    over = body(pcm, "x" + name)
    assert len(over) == 25_000_001
    assert "25000000" in refused(await post(emu, AUDIO, over), 413, "audio_too_long")


async def test_image_request_over_25_mb_is_image_too_large(v1: AsyncExpressionMeasurementClient) -> None:
    # §4: 25 MB per request for images too (the code for it is inferred: image_too_large).
    image = jpeg_of_size(1_950_000)
    with pytest.raises(ContentTooLargeError) as err:
        await v1.video.measure(file=[image] * 13)  # 25.35 MB of images, each under 2 MB
    assert err.value.body.code == "image_too_large"
    assert (await v1.runs.list()).runs == []


@pytest.mark.parametrize(("size", "accepted"), [(2_000_000, True), (2_000_001, False)])
async def test_image_limit_is_2_000_000_bytes(v1: AsyncExpressionMeasurementClient, size: int, accepted: bool) -> None:
    # §4: 2 MB per image (the SDK uses 2,000,000 bytes, video_helpers/sender.py); over it: image_too_large.
    image = jpeg_of_size(size)
    if accepted:
        assert (await v1.video.measure(file=[image])).received.frames == 1
        return
    with pytest.raises(ContentTooLargeError) as err:
        await v1.video.measure(file=[jpeg(), image])  # one bad image fails the request
    assert err.value.body.code == "image_too_large" and "2000000" in err.value.body.message


@pytest.mark.parametrize(
    ("width", "height", "accepted"),
    [(3840, 2160, True), (2160, 3840, True), (13_801, 601, False)],  # 13,801 x 601 = 8,294,401
)
async def test_image_limit_is_8_294_400_pixels(
    v1: AsyncExpressionMeasurementClient, width: int, height: int, accepted: bool
) -> None:
    # §4: 8,294,400 pixels (the area of 3840x2160) per image; over it: image_too_large.
    image = jpeg_444(width, height)
    if accepted:
        assert (await v1.video.measure(file=[image])).received.frames == 1
        return
    with pytest.raises(ContentTooLargeError) as err:
        await v1.video.measure(file=[image])
    assert err.value.body.code == "image_too_large" and "8294400" in err.value.body.message


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: encoded("flac", "flac"), id="flac"),
        pytest.param(lambda: encoded("ogg", "libopus", rate=48_000), id="ogg-opus"),
        pytest.param(lambda: encoded("avi", "pcm_s16le"), id="riff-avi"),
    ],
)
async def test_other_audio_formats_are_unsupported_media_type(v1: AsyncExpressionMeasurementClient, make: Any) -> None:
    # §4: MP3, FLAC, Ogg, MP4/M4A and non-WAV RIFF get unsupported_media_type (415, inferred status);
    # MP3 and MP4 are in test_v1.py. No conversion, and no run (§6: rejected before measurement).
    with pytest.raises(UnsupportedMediaTypeError) as err:
        await v1.audio.measure(file=("sound.bin", make(), "application/octet-stream"))
    assert err.value.status_code == 415 and err.value.body.code == "unsupported_media_type"
    assert (await v1.runs.list()).runs == []


async def test_a_png_is_unsupported_media_type(v1: AsyncExpressionMeasurementClient) -> None:
    # §4: image upload is JPEG only; not JPEG: unsupported_media_type.
    with pytest.raises(UnsupportedMediaTypeError) as err:
        await v1.video.measure(file=[jpeg(), png()])
    assert err.value.body.code == "unsupported_media_type"
    assert (await v1.runs.list()).runs == []


@pytest.mark.parametrize("pcm", [pytest.param(bytes(3201), id="odd-length"), pytest.param(b"", id="empty")])
async def test_odd_or_empty_headerless_audio_is_audio_decode_failed(
    v1: AsyncExpressionMeasurementClient, pcm: bytes
) -> None:
    # §4: anything not WAV and not refused is read as headerless samples; an empty or odd-length body gets
    # audio_decode_failed. Rejected before measurement: no run (§6).
    with pytest.raises(BadRequestError) as err:
        await v1.audio.measure(file=("raw.pcm", pcm, "application/octet-stream"))
    assert err.value.body.code == "audio_decode_failed"
    assert (await v1.runs.list()).runs == []
    even = await v1.audio.measure(file=("raw.pcm", bytes(3200), "application/octet-stream"))
    assert even.received.audio_duration_ms == 100


async def test_an_unreadable_multipart_body_is_message_invalid(emu: EmulatorServer) -> None:
    # §5: documented, 400 message_invalid, "The multipart body could not be read, ...".
    refused(await post(emu, AUDIO, b'{"file": "x"}', content_type="application/json"), 400, "message_invalid")
    truncated = multipart(("file", "a.wav", "audio/wav", SILENCE))[:-40]
    refused(await post(emu, AUDIO, truncated), 400, "message_invalid")
    # §2: exactly one file part for audio, one or more for video (the code for a missing one is inferred).
    config_only = multipart(("config", None, "application/json", b"{}"))
    refused(await post(emu, AUDIO, config_only), 400, "message_invalid")
    refused(await post(emu, VIDEO, config_only), 400, "message_invalid")


# --- §6 runs ----------------------------------------------------------------------------------------------


async def test_refused_requests_leave_no_run_and_measured_ones_a_parsable_run(
    v1: AsyncExpressionMeasurementClient,
) -> None:
    # §6 RUNS: "an upload becomes a run once its audio reaches measurement (images: the checks); later failures
    # give errored, earlier rejections no run"; the run's config is {schema: v4, audio, measurement_timer_ms}
    # or {schema: v4, image, face}, which the SDK's Run model requires.
    for refusal in (
        v1.audio.measure(file=wav(SILENCE), config=AudioFileConfig(measurement_timer_ms=100)),
        v1.audio.measure(file=wav(wav_tones(1.0, [], rate=8000))),
        v1.video.measure(file=[jpeg()], config=VideoFileConfig(face=VideoFileConfigFace(min_size=0))),
    ):
        with pytest.raises(BadRequestError):
            await refusal
    assert (await v1.runs.list()).runs == []
    audio = await v1.audio.measure(file=wav(SILENCE))
    whole = jpeg()
    with pytest.raises(BadRequestError) as broken:  # passes the checks, fails to decode while measured
        await v1.video.measure(file=[whole, whole[: len(whole) // 2]])
    assert broken.value.body.code == "image_decode_failed"
    errored, ended = (await v1.runs.list()).runs
    assert (errored.endpoint, errored.status, errored.metered_seconds) == ("video", "errored", 0)
    assert (ended.run_id, ended.status) == (audio.run_id, "ended")
    audio_run, video_run = await v1.runs.get(ended.run_id), await v1.runs.get(errored.run_id)
    assert isinstance(audio_run.config, AudioRunConfig) and audio_run.config.schema_ == "v4"
    assert audio_run.config.audio.model_dump() == {"type": "audio/pcm", "encoding": "s16le", "sample_rate": 16000,
                                                   "channels": 1}  # fmt: skip
    assert isinstance(video_run.config, VideoRunConfig) and video_run.config.schema_ == "v4"
    assert video_run.config.image.type == "image/jpeg"
    assert (video_run.config.face.threshold, video_run.config.face.min_size) == (0.9, 60)


async def test_metered_seconds_follow_hume_billing(v1: AsyncExpressionMeasurementClient) -> None:
    # §6 billing: audio seconds taken in; 1/3 s per image; minimum 10 s per run that took media; a failed file
    # request 0 (see the errored run above).
    long = await v1.audio.measure(file=("raw.pcm", bytes(400_000), "application/octet-stream"))  # 12.5 s
    short = await v1.audio.measure(file=wav(SILENCE))
    many = await v1.video.measure(file=[jpeg()] * 31)
    few = await v1.video.measure(file=[jpeg()] * 2)
    metered = {r.run_id: r.metered_seconds for r in (await v1.runs.list()).runs}
    assert metered[long.run_id] == 12.5 and metered[short.run_id] == 10.0
    assert metered[many.run_id] == pytest.approx(31 / 3, abs=0.001) and metered[few.run_id] == 10.0


async def test_runs_pages_are_1_to_200_default_50_newest_first(v1: AsyncExpressionMeasurementClient) -> None:
    # §2 (reference/runs/list): page_size int 1-200, default 50; cursor paging; newest first; no next_cursor on
    # the last page (§6). Out of range: 400 invalid_request (inferred code).
    made = [(await v1.audio.measure(file=("r.pcm", bytes(320), "application/octet-stream"))).run_id for _ in range(51)]
    first = await v1.runs.list()
    assert len(first.runs) == 50 and first.next_cursor
    last = await v1.runs.list(cursor=first.next_cursor)
    assert [r.run_id for r in first.runs + last.runs] == made[::-1] and last.next_cursor is None
    assert len((await v1.runs.list(page_size=200)).runs) == 51
    one = await v1.runs.list(page_size=1)
    assert [r.run_id for r in one.runs] == [made[-1]] and one.next_cursor
    for size in (0, 201):
        with pytest.raises(BadRequestError) as err:
            await v1.runs.list(page_size=size)
        assert err.value.body.code == "invalid_request" and "page_size" in err.value.body.message
    # §2 (reference/runs/list-events): the same page_size bounds for a run's events.
    assert (await v1.runs.list_events(made[0], page_size=200)).events == []
    for size in (0, 201):
        with pytest.raises(BadRequestError) as err:
            await v1.runs.list_events(made[0], page_size=size)
        assert err.value.body.code == "invalid_request"


async def test_runs_filters_combine_and_are_checked(v1: AsyncExpressionMeasurementClient, emu: EmulatorServer) -> None:
    # §2: status live/ended/errored, mode realtime/file, endpoint audio/video, started_before (exclusive) and
    # started_after (inclusive) as RFC 3339; filters combine.
    first = await v1.audio.measure(file=wav(SILENCE))
    await asyncio.sleep(0.005)  # runs report milliseconds: two in one would tie
    second = await v1.video.measure(file=[jpeg()])
    runs = {r.run_id: r for r in (await v1.runs.list()).runs}
    at = runs[second.run_id].started_at
    assert at > runs[first.run_id].started_at
    before = await v1.runs.list(started_before=at)
    assert [r.run_id for r in before.runs] == [first.run_id]  # exclusive
    after = await v1.runs.list(started_after=at)
    assert [r.run_id for r in after.runs] == [second.run_id]  # inclusive
    assert (await v1.runs.list(started_after=at + timedelta(milliseconds=1))).runs == []
    assert [r.run_id for r in (await v1.runs.list(endpoint="audio", status="ended", mode="file")).runs] == [
        first.run_id
    ]
    assert (await v1.runs.list(mode="realtime")).runs == [] and (await v1.runs.list(status="live")).runs == []
    async with httpx.AsyncClient(base_url=emu.cloud_url, headers={"X-Hume-Api-Key": API_KEY}) as http:
        for query in ({"status": "done"}, {"mode": "batch"}, {"endpoint": "text"}, {"page_size": "ten"},
                      {"started_after": "2026-12-05"}, {"started_before": "2026-12-05T10:00:00"},
                      {"cursor": "not-a-cursor"}):  # fmt: skip
            (name,) = query
            assert name in refused(await http.get("/v1/expression/run", params=query), 400, "invalid_request")
        ok = await http.get("/v1/expression/run", params={"started_before": "2999-01-01T00:00:00.000+01:00"})
        assert ok.status_code == 200 and len(ok.json()["runs"]) == 2


# --- §1 auth, §4 rate limit ---------------------------------------------------------------------------------


async def test_401_has_message_and_no_type_or_code(make_emulator: Any) -> None:
    # §1: a missing, invalid or expired credential gets 401 before the service, body {"message", "request_id"?}
    # (request_id only when an API key was rejected), no type/code (SDK types/authentication_error.py).
    emu = make_emulator(api_key="right")
    async with httpx.AsyncClient(base_url=emu.cloud_url) as http:
        missing = await http.get("/v1/expression/run")
        wrong_key = await http.get("/v1/expression/run", headers={"X-Hume-Api-Key": "wrong"})
        bad_token = await http.get("/v1/expression/run", headers={"Authorization": "Bearer expired"})
    assert [r.status_code for r in (missing, wrong_key, bad_token)] == [401] * 3
    assert set(missing.json()) == {"message"} and set(bad_token.json()) == {"message"}
    assert set(wrong_key.json()) == {"message", "request_id"}
    with pytest.raises(UnauthorizedError) as err:
        await v1_client(emu.cloud_url, api_key="wrong").audio.measure(file=wav(SILENCE))
    assert err.value.body.message and err.value.body.request_id
    emu.set_faults(path=AUDIO, status=401, times=1)  # an injected 401 has the gateway's shape too
    injected = await post(emu, AUDIO, multipart(("file", "a.wav", "audio/wav", SILENCE)))
    assert injected.status_code == 401 and set(injected.json()) == {"message"}


async def test_403_forbidden_for_an_organization_not_enabled_for_v1(
    emu: EmulatorServer, v1: AsyncExpressionMeasurementClient, make_emulator: Any
) -> None:
    # §1: 403 = the organization is not permitted to use the API (v1 is a limited release, HUME.md §0);
    # §5: code forbidden, in v1's error shape (the SDK's ForbiddenError parses it as ErrorBody).
    emu.set_faults({"v1_not_enabled": [API_KEY]})
    with pytest.raises(ForbiddenError) as err:
        await v1.audio.measure(file=wav(SILENCE))
    assert err.value.body.code == "forbidden" and err.value.body.type == "error" and err.value.body.request_id
    async with httpx.AsyncClient(headers={"X-Hume-Api-Key": API_KEY}) as http:
        runs = await http.get(f"{emu.cloud_url}/v1/expression/run")
        assert refused(runs, 403, "forbidden")
        other = await http.get(f"{emu.cloud_url}/v1/expression/run", headers={"X-Hume-Api-Key": "another-org"})
        assert other.status_code == 200
        voice = await http.get(f"{emu.base_url}/v0/evi/chats")  # only v1 is a limited release
        assert voice.status_code == 200
        token = (await http.post(f"{emu.base_url}/oauth2-cc/token", auth=(API_KEY, "s"),
                                 data={"grant_type": "client_credentials"})).json()["access_token"]  # fmt: skip
        by_token = await http.get(f"{emu.cloud_url}/v1/expression/run", headers={"Authorization": f"Bearer {token}"})
        assert refused(by_token, 403, "forbidden")  # a token acts for its key's organization
    emu.reset()
    assert (await v1.audio.measure(file=wav(SILENCE))).received.audio_duration_ms == 1000
    configured = make_emulator(v1_not_enabled_keys=frozenset({"limited"}))
    with pytest.raises(ForbiddenError):
        await v1_client(configured.cloud_url, api_key="limited").audio.measure(file=wav(SILENCE))


async def test_429_past_the_requests_per_minute_of_an_organization(make_emulator: Any) -> None:
    # §4: "each organization can make up to 600 requests per minute" (LE intro); what v1 answers past it is
    # undocumented: Audio Decisions' gateway answers 429 {"message": "API rate limit exceeded"}, applied here
    # by inference, with Retry-After. Counted per organization across both hosts' API paths.
    assert EmulatorConfig().requests_per_minute == 600
    emu = make_emulator(requests_per_minute=3)
    async with httpx.AsyncClient(headers={"X-Hume-Api-Key": API_KEY}) as http:
        assert (await http.get(f"{emu.cloud_url}/v1/expression/run")).status_code == 200
        assert (await http.get(f"{emu.base_url}/v0/evi/chats")).status_code == 200
        token = (await http.post(f"{emu.base_url}/oauth2-cc/token", auth=(API_KEY, "s"),
                                 data={"grant_type": "client_credentials"})).json()["access_token"]  # fmt: skip
        by_token = await http.get(f"{emu.cloud_url}/v1/expression/run", headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 200  # the third, for the key that issued the token
        limited = await http.get(f"{emu.cloud_url}/v1/expression/run")
        assert limited.status_code == 429 and limited.json() == {"message": "API rate limit exceeded"}
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (await http.get(f"{emu.base_url}/v0/evi/chats")).status_code == 429  # both hosts
        other = await http.get(f"{emu.cloud_url}/v1/expression/run", headers={"X-Hume-Api-Key": "another-org"})
        assert other.status_code == 200  # per organization
        assert (await http.get(f"{emu.base_url}/_emulator/health")).status_code == 200  # not a Hume path
    with pytest.raises(ApiError) as err:
        await v1_client(emu.cloud_url).audio.measure(file=wav(SILENCE), request_options={"max_retries": 0})
    assert err.value.status_code == 429
    unlimited = make_emulator(requests_per_minute=None)
    client = v1_client(unlimited.cloud_url)
    for _ in range(5):
        await client.runs.list()


def test_the_window_slides_over_60_seconds() -> None:
    # §4: "per minute"; the emulator counts a sliding 60 s window (rate_limit.py).
    log = RequestLog()
    assert [log.admit("org", 3, now=t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert log.admit("org", 3, now=30.0) == 30  # seconds until the request at 0 s leaves the window
    assert log.admit("other", 3, now=30.0) is None
    assert log.admit("org", 3, now=60.0) is None  # the one at 0 s has left
    assert log.admit("org", 3, now=60.5) == 1


# --- §7 vocabularies -------------------------------------------------------------------------------------------


def test_vocabularies_have_humes_documented_sizes() -> None:
    # §7: 415 audio expressions, 190 voice attributes, 48 video expressions, 27 video descriptions, lowercase;
    # the names the docs show are among them, every other name is plainly the emulator's.
    # The names the docs show (/work/shared/hume/*.partial.json).
    audio = {
        "abhorrence",
        "admiration",
        "adoration",
        "amusement",
        "anger",
        "chuckling",
        "dumbfoundedness",
        "eagerness",
        "feeling uplifted",
        "feeling upset",
        "interest",
        "joy",
        "neutral",
        "pleasure",
        "pondering",
    }
    voice = {"background music", "calm", "clear", "fast", "husky", "monotone"}
    face = {
        "admiration",
        "adoration",
        "amusement",
        "concentration",
        "contemplation",
        "contempt",
        "entrancement",
        "interest",
        "joy",
        "realization",
        "surprise (positive)",
    }
    descriptions = {"grin", "jaw drop", "smile", "wide-eyed"}
    lists = [(AUDIO_EXPRESSIONS, 415, audio), (VOICE_ATTRIBUTES, 190, voice), (VIDEO_EXPRESSIONS, 48, face),
             (VIDEO_DESCRIPTIONS, 27, descriptions)]  # fmt: skip
    for names, count, shown in lists:
        assert len(names) == len(set(names)) == count
        assert shown <= set(names) and all(n == n.lower() for n in names) and list(names) == sorted(names)
        assert all(n.startswith("emulated ") for n in set(names) - shown)


async def test_responses_use_the_vocabularies_and_cutoffs(v1: AsyncExpressionMeasurementClient) -> None:
    # §6: probability 0-1 to 4 dp; voice_attributes only >= 0.725; face scores only > 0.1; sorted by
    # probability first; names lowercase (§7).
    audio = await v1.audio.measure(file=wav(wav_tones(12.0, [(0.5, 11.5)])))
    assert audio.measurements
    for m in audio.measurements:
        assert all(e.name in AUDIO_EXPRESSIONS and round(e.probability, 4) == e.probability for e in m.expressions)
        assert all(a.name in VOICE_ATTRIBUTES and a.probability >= 0.725 for a in m.voice_attributes)
        assert [e.probability for e in m.expressions] == sorted((e.probability for e in m.expressions), reverse=True)
    video = await v1.video.measure(file=[big_faces("faces=2")])
    for face in video.measurements[0].faces:
        assert face.expressions is not None and all(
            e.name in VIDEO_EXPRESSIONS and e.probability > 0.1 for e in face.expressions
        )
        assert face.descriptions is not None and all(d.name in VIDEO_DESCRIPTIONS and d.probability > 0.1
                                         for d in face.descriptions)  # fmt: skip


def test_cli_flags_set_the_rate_and_the_keys_not_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    # §4: 600 requests per minute is Hume's, so the standalone emulator's default; 0 lifts the limit.
    def config(*argv: str) -> EmulatorConfig:
        return config_from_args(build_parser().parse_args(argv))

    assert config().requests_per_minute == 600 and config().v1_not_enabled_keys == frozenset()
    assert config("--requests-per-minute", "5").requests_per_minute == 5
    assert config("--requests-per-minute", "0").requests_per_minute is None
    keys = config("--v1-not-enabled-key", "a", "--v1-not-enabled-key", "b").v1_not_enabled_keys
    assert keys == frozenset({"a", "b"})
    with pytest.raises(SystemExit):
        config("--requests-per-minute", "-1")
    assert "--requests-per-minute" in capsys.readouterr().err
