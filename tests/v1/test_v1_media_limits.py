"""v1 jobs over hostile media: what a file's headers declare over the media limits is that source's error and
nothing of it reaches Hume; what only decoding finds stops there, with what was measured kept. Real service,
emulator and media server over sockets, real Postgres; what reached Hume is read from a recording hop."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import ServiceFactory
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_flac, make_headerless_h264, make_mp4, make_png_mov, make_raw_wav
from tests.v1.media_server import EVERY_FACE, GAPS, media_server
from tests.v1.test_v1_jobs import FINAL, rows
from tests.v1.wire_recorder import wire_recorder

AUDIO = "/v1/expression/audio/file"
VIDEO = "/v1/expression/video/file"
MAX_DURATION_S = 60
MAX_FRAMES = 10


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("hostile")
    make_png_mov(directory / "huge.mov", 16000, 16000, frames=2)  # 2 s: within MAX_FRAMES
    make_raw_wav(directory / "one-hertz.wav", rate=1, seconds=10_000)  # 20 kB declaring 2.8 h
    make_raw_wav(directory / "channels.wav", rate=16_000, seconds=1, channels=65)
    make_flac(directory / "silence.flac", 2 * MAX_DURATION_S, gaps=[(0.0, 2 * MAX_DURATION_S)])
    make_mp4(directory / "talk.mp4", 8.0, gaps=GAPS)  # 25 frames at 3 fps: over MAX_FRAMES
    make_flac(directory / "undeclared.flac", 1.5 * MAX_DURATION_S, declare_length=False)
    make_headerless_h264(directory / "raw.h264", 8.0)
    with media_server(directory) as url:
        yield url


def _outcomes(database_url: str, job_id: str) -> dict[tuple[int, str], tuple[str | None, str | None]]:
    found = rows(
        database_url, "SELECT source_index, medium, error_code, error FROM v1_chunk WHERE job_id = :id AND chunk = -1",
        id=job_id,
    )  # fmt: skip
    return {(r.source_index, r.medium): (r.error_code, r.error) for r in found}


def test_media_over_the_limits_cost_nothing_and_what_was_measured_stays(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    with wire_recorder(emulator.cloud_url) as (wire, wire_url):
        service = make_service(
            hume_backend="v1", hume_cloud_url=wire_url, allow_private_hosts="127.0.0.1", v1_audio_chunk_bytes=960_044,
            v1_frames_per_request=4, media_max_duration_s=MAX_DURATION_S, media_max_frames=MAX_FRAMES,
        )  # fmt: skip
        refused = {
            "huge.mov": ("video", "media_frame_too_large", "MEDIA_MAX_PIXELS"),
            "one-hertz.wav": ("audio", "audio_sample_rate_unsupported", "1 Hz"),
            "channels.wav": ("audio", "audio_too_many_channels", "65 channels"),
            "silence.flac": ("audio", "media_too_long", "MEDIA_MAX_DURATION_S"),
            "talk.mp4": ("video", "media_too_many_frames", "MEDIA_MAX_FRAMES"),
        }
        with service.client() as client:
            # No models named: each file is measured for what it holds (talk.mp4's sound is within the limits).
            urls = [f"{media}/media/{name}" for name in refused]
            job = client.post("/v1/jobs", json={"urls": urls}).json()
            job = wait_for_status(client, job["id"], FINAL, timeout=120)
            assert job["status"] == "completed", job
            outcomes = _outcomes(service.database_url, job["id"])
            for i, (medium, code, named) in enumerate(refused.values()):
                error_code, error = outcomes[(i, medium)]
                assert error_code == code and error and named in error, (i, error_code, error)
            # Nothing of a refused medium reached Hume: the only uploads are talk.mp4's sound.
            assert wire.sent(VIDEO) == []
            assert sum(len(s.parts()[0][1]) - 44 for s in wire.sent(AUDIO)) == pytest.approx(8 * 16_000 * 2, rel=0.01)
            wire.clear()

            urls = [f"{media}/media/undeclared.flac", f"{media}/media/raw.h264"]
            body = {"urls": urls, "models": {"prosody": {}, "face": EVERY_FACE}}
            job = client.post("/v1/jobs", json=body).json()
            job = wait_for_status(client, job["id"], FINAL, timeout=120)
            summary = client.get(f"/v1/jobs/{job['id']}/summary").json()["models"]

    # Decoding found the limits: Hume got exactly MAX_DURATION_S of audio and MAX_FRAMES frames.
    audio_bytes = [len(data) - 44 for s in wire.sent(AUDIO) for name, data in s.parts() if name == "file"]
    assert sum(audio_bytes) == MAX_DURATION_S * 16_000 * 2
    assert sum(s.files() for s in wire.sent(VIDEO)) == MAX_FRAMES
    assert job["status"] == "completed", job
    outcomes = _outcomes(service.database_url, job["id"])
    assert outcomes[(0, "audio")][0] == "media_duration_limit"
    assert outcomes[(1, "video")][0] == "media_frame_limit"
    # What was measured up to the limit is kept, and each cut is a file error of its source.
    assert summary["prosody"]["predictions"] > 0 and summary["face"]["predictions"] > 0
    times = rows(
        service.database_url, "SELECT model, max(time_end) AS until FROM prediction WHERE job_id = :id GROUP BY model",
        id=job["id"],
    )  # fmt: skip
    until = {r.model: r.until for r in times}
    assert until["prosody"] <= MAX_DURATION_S + 0.01 and until["face"] < 4.0
    sources = rows(service.database_url, "SELECT position, error FROM source WHERE job_id = :id", id=job["id"])
    assert all(s.error is None for s in sources)
    # Each source: its cut medium, and the model its file lacks (the FLAC has no picture, the H.264 no sound).
    assert job["num_errors"] == 4


def _width(jpeg: bytes) -> int:
    with av.open(io.BytesIO(jpeg), mode="r") as image:
        return next(image.decode(video=0)).width


def test_a_process_decodes_at_most_media_decode_concurrency_media_at_once(
    make_service: ServiceFactory, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Two jobs at once with MEDIA_DECODE_CONCURRENCY=1: the second video is decoded (and sent) only after the
    first one's last chunk, so two decodes' memory never add up."""
    make_mp4(tmp_path / "wide.mp4", 4.0, size=(320, 240), audio=False)
    make_mp4(tmp_path / "narrow.mp4", 4.0, size=(160, 120), audio=False)
    # Each request takes a while at Hume, so two jobs decoding at once would interleave their requests.
    emulator.set_faults(path=VIDEO, delay_s=0.2)
    with media_server(tmp_path) as media, wire_recorder(emulator.cloud_url) as (wire, wire_url):
        service = make_service(
            hume_backend="v1", hume_cloud_url=wire_url, allow_private_hosts="127.0.0.1", v1_frames_per_request=2,
            media_decode_concurrency=1,
        )  # fmt: skip
        with service.client() as client:
            ids = [
                client.post("/v1/jobs", json={"urls": [f"{media}/media/{name}"], "models": {"face": {}}}).json()["id"]
                for name in ("wide.mp4", "narrow.mp4")
            ]
            for job_id in ids:
                assert wait_for_status(client, job_id, FINAL, timeout=120)["status"] == "completed"
    widths = [_width(s.parts()[-1][1]) for s in wire.sent(VIDEO)]
    # 4 s of 10 fps at 3 fps: 12 frames, 6 requests of 2 each; one video's requests all before the other's.
    assert sorted(widths) == [160] * 6 + [320] * 6
    assert widths in ([320] * 6 + [160] * 6, [160] * 6 + [320] * 6), widths
