"""Hume's v1 Expression Measurement API, driven through the official `hume-expression-measurement` SDK."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hume_expression_measurement import AsyncExpressionMeasurementClient, ExpressionMeasurementClientEnvironment
from hume_expression_measurement.core.api_error import ApiError
from hume_expression_measurement.errors import (
    BadRequestError,
    ContentTooLargeError,
    InternalServerError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from hume_expression_measurement.types import AudioFileConfig, VideoFileConfig, VideoFileConfigFace

from app.emulator.expression_labels import AUDIO_EXPRESSIONS, VIDEO_DESCRIPTIONS, VIDEO_EXPRESSIONS
from app.emulator.testing import EmulatorServer

from .conftest import API_KEY
from .media import encoded_audio, jpeg, jpeg_with_faces, padded_jpeg, pcm_tones, strip_id3, wav_tones

TONES = [(1.0, 2.5), (4.0, 5.0)]


def v1_client(base_url: str, api_key: str = API_KEY, **kwargs: Any) -> AsyncExpressionMeasurementClient:
    environment = ExpressionMeasurementClientEnvironment(base=base_url, production=base_url.replace("http", "ws", 1))
    return AsyncExpressionMeasurementClient(api_key=api_key, environment=environment, **kwargs)


@pytest.fixture
def v1(emu: EmulatorServer) -> AsyncExpressionMeasurementClient:
    return v1_client(emu.cloud_url)


def wav(data: bytes) -> tuple[str, bytes, str]:
    return ("speech.wav", data, "audio/wav")


async def test_tones_become_utterances_scored_deterministically(v1: AsyncExpressionMeasurementClient) -> None:
    """Each tone is one utterance at its place in the audio; scores follow the samples, not chance."""
    audio = wav_tones(6.0, TONES)
    result = await v1.audio.measure(file=wav(audio))
    assert result.received.audio_duration_ms == 6000
    spans = [(u.utterance_id, u.audio_start_ms, u.audio_end_ms) for u in result.utterances]
    assert [s[0] for s in spans] == [0, 1]
    for (_, start, end), (t0, t1) in zip(spans, TONES, strict=True):
        assert abs(start - t0 * 1000) <= 60 and abs(end - t1 * 1000) <= 60
    assert [m.measurement_id for m in result.measurements] == list(range(len(result.measurements)))
    for utterance in result.utterances:
        own = [m for m in result.measurements if m.utterance_id == utterance.utterance_id]
        assert own and own[-1].trigger == "speech_ended"
        assert all(utterance.audio_start_ms <= m.audio_start_ms < m.audio_end_ms for m in own)
    for m in result.measurements:
        probabilities = [e.probability for e in m.expressions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(e.name in AUDIO_EXPRESSIONS and e.name == e.name.lower() for e in m.expressions)
        assert all(a.probability >= 0.725 for a in m.voice_attributes)
    again = await v1.audio.measure(file=wav(audio))
    assert again.measurements == result.measurements and again.run_id != result.run_id
    raw = await v1.audio.measure(file=("speech.pcm", pcm_tones(6.0, TONES), "application/octet-stream"))
    assert raw.utterances == result.utterances
    assert len(AUDIO_EXPRESSIONS) == 415 and "neutral" in AUDIO_EXPRESSIONS


async def test_a_measurement_may_judge_no_expression_present(v1: AsyncExpressionMeasurementClient) -> None:
    """HUME-V1-FACTS §6: each expression has its own cutoff and `expressions` "may be empty", so among 60
    utterances some measurements name none, and the others name some. (Scores follow the samples: each
    half-second tone starts at its own phase, so no two measure the same samples.)"""
    tones = [(1.51 * i, 1.51 * i + 0.5) for i in range(60)]
    result = await v1.audio.measure(file=("speech.pcm", pcm_tones(91.0, tones), "application/octet-stream"))
    counts = [len(m.expressions) for m in result.measurements]
    assert len(counts) == 60 and 0 in counts and max(counts) > 0, counts


async def test_a_measured_face_may_have_no_score_above_the_cutoff(v1: AsyncExpressionMeasurementClient) -> None:
    """HUME-V1-FACTS §6: face scores are listed only above 0.1, so a measured face's lists may be empty ([]),
    while a face listed but not measured has none (null). Among 60 measured faces, both kinds."""
    result = await v1.video.measure(file=[("f.jpg", faces("faces=2", luma=20 + i), "image/jpeg") for i in range(30)])
    measured = [f for m in result.measurements for f in m.faces if f.face_id is not None]
    assert len(measured) == 60
    assert [] in [f.expressions for f in measured] and any(f.expressions for f in measured)
    assert [] in [f.descriptions for f in measured] and any(f.descriptions for f in measured)


async def test_silence_has_no_utterances(v1: AsyncExpressionMeasurementClient) -> None:
    result = await v1.audio.measure(file=wav(wav_tones(3.0, [])))
    assert result.received.audio_duration_ms == 3000
    assert result.utterances == [] and result.measurements == []


async def test_measurement_timer_sets_interval_measurements(v1: AsyncExpressionMeasurementClient) -> None:
    """Interval measurements every timer's worth of speech (3 s unless set); a final one only if the last is
    >= 1 s back."""
    result = await v1.audio.measure(file=wav(wav_tones(8.5, [(0.5, 8.0)])))
    (utterance,) = result.utterances
    assert [m.trigger for m in result.measurements] == ["interval", "interval", "speech_ended"]
    ends = [m.audio_end_ms for m in result.measurements]
    assert ends == [utterance.audio_start_ms + 3000, utterance.audio_start_ms + 6000, utterance.audio_end_ms]
    assert result.measurements[-1].audio_start_ms == utterance.audio_start_ms  # the whole utterance: < 10 s
    every_4s = AudioFileConfig(measurement_timer_ms=4000)
    close = await v1.audio.measure(file=wav(wav_tones(9.0, [(0.5, 9.0)])), config=every_4s)
    assert [m.trigger for m in close.measurements] == ["interval"] * 2  # the last interval ended < 1 s before
    long = await v1.audio.measure(file=wav(wav_tones(13.0, [(0.0, 13.0)])))
    assert all(m.audio_end_ms - m.audio_start_ms <= 10_000 for m in long.measurements)
    assert long.measurements[-1].audio_start_ms > 0
    with pytest.raises(BadRequestError) as err:
        await v1.audio.measure(file=wav(wav_tones(1.0, [])), config=AudioFileConfig(measurement_timer_ms=0))
    assert err.value.body.code == "config_invalid"


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(wav_tones(1.0, TONES, rate=44_100), id="44.1kHz"),
        pytest.param(wav_tones(1.0, TONES, channels=2), id="stereo"),
        pytest.param(wav_tones(1.0, [], sample_width=1), id="8-bit"),
        pytest.param(wav_tones(1.0, TONES)[:-1001], id="truncated"),
        pytest.param(b"\x01\x02\x03", id="odd-raw"),
    ],
)
async def test_wrong_pcm_format_is_audio_decode_failed(v1: AsyncExpressionMeasurementClient, audio: bytes) -> None:
    with pytest.raises(BadRequestError) as err:
        await v1.audio.measure(file=wav(audio))
    assert err.value.body.code == "audio_decode_failed"
    assert err.value.body.message and err.value.body.request_id


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(encoded_audio("mp3", "libmp3lame"), id="mp3"),
        pytest.param(strip_id3(encoded_audio("mp3", "libmp3lame")), id="mp3-no-id3"),
        pytest.param(encoded_audio("mp4", "aac"), id="mp4"),
    ],
)
async def test_compressed_audio_is_unsupported(v1: AsyncExpressionMeasurementClient, audio: bytes) -> None:
    """The server does not convert: compressed audio is refused, not read as samples."""
    with pytest.raises(UnsupportedMediaTypeError) as err:
        await v1.audio.measure(file=("talk.bin", audio, "application/octet-stream"))
    assert err.value.status_code == 415 and err.value.body.code == "unsupported_media_type"


async def test_body_over_25mb_is_audio_too_long(v1: AsyncExpressionMeasurementClient) -> None:
    with pytest.raises(ContentTooLargeError) as err:
        await v1.audio.measure(file=("long.pcm", bytes(26_000_000), "application/octet-stream"))
    assert err.value.body.code == "audio_too_long"


def faces(spec: str, luma: int = 128) -> bytes:
    """640x480, so every slot's face is over Hume's default min_size of 60 px (slot 7's side is 72 px)."""
    return jpeg_with_faces(spec, luma, width=640, height=480)


async def test_one_measurement_per_image_with_faces_where_placed(v1: AsyncExpressionMeasurementClient) -> None:
    images = [faces("faces=2"), faces("faces=0", luma=40), faces("slots=0,1,2", luma=90)]
    result = await v1.video.measure(file=[("f.jpg", i, "image/jpeg") for i in images])
    assert result.received.frames == 3 and result.face_state is None
    assert [m.frame_id for m in result.measurements] == [0, 1, 2]
    assert [len(m.faces) for m in result.measurements] == [2, 0, 3]
    first, _, third = result.measurements
    assert [f.face_id for f in first.faces] == [0, 1]
    # Two faces are measured, largest first; the third is listed with its box only.
    assert [f.face_id for f in third.faces] == [0, 1, None] and third.faces[2].expressions is None
    for face in first.faces:
        x0, y0, x1, y1 = face.bbox
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480 and face.confidence >= 0.9
        assert face.expressions is not None and all(
            e.name in VIDEO_EXPRESSIONS and e.probability > 0.1 for e in face.expressions
        )
        assert face.descriptions is not None and all(d.name in VIDEO_DESCRIPTIONS for d in face.descriptions)
    unplaced = await v1.video.measure(file=[jpeg(), jpeg()])
    assert unplaced.measurements[0].faces == unplaced.measurements[1].faces  # same bytes, same faces


async def test_face_state_continues_ids_across_requests(v1: AsyncExpressionMeasurementClient) -> None:
    first = await v1.video.measure(
        file=[faces("slots=0,1")], config=VideoFileConfig(face=VideoFileConfigFace(return_face_state=True))
    )
    assert [f.face_id for f in first.measurements[0].faces] == [0, 1] and first.face_state
    # A new face (slot 2) next to a known one (slot 0): the known keeps its id, the new one takes the next.
    second = await v1.video.measure(
        file=[faces("slots=0,2", luma=70)],
        config=VideoFileConfig(face_state=first.face_state, face=VideoFileConfigFace(return_face_state=True)),
    )
    assert [f.face_id for f in second.measurements[0].faces] == [0, 2]
    fresh = await v1.video.measure(file=[faces("slots=0,2", luma=70)])
    assert [f.face_id for f in fresh.measurements[0].faces] == [0, 1]
    altered = await v1.video.measure(file=[faces("slots=2")], config=VideoFileConfig(face_state=first.face_state + "0"))
    assert [f.face_id for f in altered.measurements[0].faces] == [0]  # an altered state is ignored
    high = await v1.video.measure(
        file=[faces("faces=2")], config=VideoFileConfig(face=VideoFileConfigFace(threshold=1.0))
    )
    assert high.measurements[0].faces == []


async def test_bad_images_fail_the_whole_request(v1: AsyncExpressionMeasurementClient) -> None:
    good = faces("faces=1")
    with pytest.raises(UnsupportedMediaTypeError) as unsupported:
        await v1.video.measure(file=[good, b"\x89PNG\r\n\x1a\n not a jpeg"])
    assert unsupported.value.body.code == "unsupported_media_type"
    with pytest.raises(BadRequestError) as broken:
        await v1.video.measure(file=[good, good[: len(good) // 2]])
    assert broken.value.body.code == "image_decode_failed"
    for too_large in (jpeg(3841, 2160), padded_jpeg(2_000_001)):
        with pytest.raises(ContentTooLargeError) as err:
            await v1.video.measure(file=[good, too_large])
        assert err.value.body.code == "image_too_large"
    ok = await v1.video.measure(file=[jpeg(3840, 2160), padded_jpeg(1_900_000)])
    assert ok.received.frames == 2


async def test_429_is_retried_after_retry_after_then_surfaces(emu: EmulatorServer) -> None:
    """Hume's busy answer: the SDK waits Retry-After and retries; without retries it raises the 429."""
    v1 = v1_client(emu.cloud_url)
    emu.set_faults(path="/v1/expression/audio/file", status=429, times=1, retry_after=1)
    started = time.monotonic()
    result = await v1.audio.measure(file=wav(wav_tones(1.0, [])))
    assert result.received.audio_duration_ms == 1000 and 0.9 <= time.monotonic() - started < 3
    assert emu.calls()["POST /v1/expression/audio/file"] == 2
    emu.set_faults(path="/v1/expression/*", status=429, times=1, retry_after=1)
    with pytest.raises(ApiError) as err:
        await v1.video.measure(file=[jpeg()], request_options={"max_retries": 0})
    assert err.value.status_code == 429 and err.value.body["code"] == "server_busy"
    assert err.value.headers is not None and err.value.headers["retry-after"] == "1"


@pytest.mark.parametrize(("status", "error"), [(503, ServiceUnavailableError), (500, InternalServerError)])
async def test_5xx_faults_parse_as_sdk_errors(emu: EmulatorServer, status: int, error: type[ApiError]) -> None:
    v1 = v1_client(emu.cloud_url, max_retries=0)
    emu.set_faults(path="/v1/expression/run", status=status, times=1)
    with pytest.raises(error) as err:
        await v1.runs.list()
    assert err.value.body.code == ("server_busy" if status == 503 else "internal_error")
    emu.set_faults(path="/v1/expression/run", delay_s=0.3, times=1)
    started = time.monotonic()
    await v1.runs.list()
    assert time.monotonic() - started >= 0.3


async def test_api_key_or_bearer_token_is_required(make_emulator: Any) -> None:
    emu = make_emulator(api_key="right", secret_key="secret")
    with pytest.raises(UnauthorizedError) as err:
        await v1_client(emu.cloud_url, api_key="wrong").runs.list()
    assert err.value.body.message
    async with httpx.AsyncClient(base_url=emu.base_url) as http:
        token = (
            await http.post("/oauth2-cc/token", auth=("right", "secret"), data={"grant_type": "client_credentials"})
        ).json()["access_token"]
    async with httpx.AsyncClient(base_url=emu.cloud_url) as http:
        ok = await http.get("/v1/expression/run", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {"runs": []}
        bad = await http.get("/v1/expression/run", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["message"]


async def test_runs_record_every_measured_request(v1: AsyncExpressionMeasurementClient) -> None:
    """Requests that reached measurement are runs, newest first; one refused before it (audio that does not
    decode) is none; one that failed while measuring (an image that passed the checks, then did not decode)
    is an errored run billed nothing."""
    audio = await v1.audio.measure(file=wav(wav_tones(2.0, [(0.5, 1.5)])))
    with pytest.raises(BadRequestError):
        await v1.audio.measure(file=wav(wav_tones(1.0, [], rate=8000)))
    video = await v1.video.measure(file=[jpeg(), jpeg()])
    whole = jpeg()
    with pytest.raises(BadRequestError) as broken:
        await v1.video.measure(file=[whole, whole[: len(whole) // 2]])
    assert broken.value.body.code == "image_decode_failed"
    page = await v1.runs.list()
    assert [r.endpoint for r in page.runs] == ["video", "video", "audio"]  # newest first
    assert [r.status for r in page.runs] == ["errored", "ended", "ended"]
    assert page.runs[1].run_id == video.run_id and page.runs[2].run_id == audio.run_id
    assert page.runs[0].metered_seconds == 0 and page.runs[2].metered_seconds == 10.0  # billed >= 10 s
    first = await v1.runs.list(page_size=2)
    rest = await v1.runs.list(page_size=2, cursor=first.next_cursor)
    assert [r.run_id for r in first.runs + rest.runs] == [r.run_id for r in page.runs] and rest.next_cursor is None
    only_video = await v1.runs.list(endpoint="video", status="ended")  # filters combine
    assert [r.run_id for r in only_video.runs] == [video.run_id]
    run = await v1.runs.get(audio.run_id)
    assert run.mode == "file" and run.config.measurement_timer_ms == 3000 and run.bytes_received == 64_000
    assert run.ended_at is not None and run.ended_at >= run.started_at
    events = await v1.runs.list_events(audio.run_id)
    assert events.events == [] and events.gaps is False
    with pytest.raises(NotFoundError) as err:
        await v1.runs.get("no-such-run")
    assert err.value.body.code == "not_found"
    with pytest.raises(NotFoundError):
        await v1.runs.list_events("no-such-run")
