"""A v1 job takes v1's options, checked when it is submitted, and Hume receives exactly the options the job set:
no nulls, no batch names translated behind the user's back. Real service and emulator over sockets, real
Postgres, media made with PyAV; what went over the wire is read from a recording hop and from the emulator's
runs through Hume's official SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hume_expression_measurement import AsyncExpressionMeasurementClient, ExpressionMeasurementClientEnvironment

from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, Service, ServiceFactory
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_mp4, make_wav
from tests.v1.media_server import EVERY_FACE, GAPS, media_server
from tests.v1.test_v1_jobs import FINAL, rows
from tests.v1.wire_recorder import wire_recorder

AUDIO = "/v1/expression/audio/file"
VIDEO = "/v1/expression/video/file"
URL = "https://example.com/a.mp4"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("media")
    make_mp4(directory / "talk.mp4", 8.0, gaps=GAPS)
    # Same picture size (so the emulator's face boxes line up) but other frames: other faces, in another order.
    make_mp4(directory / "other.mp4", 8.0, fps=25, audio=False)
    make_wav(directory / "voice.wav", 8.0, gaps=GAPS)
    with media_server(directory) as url:
        yield url


@pytest.fixture
def submit_only(make_service: ServiceFactory) -> Service:
    """Jobs are checked and stored, never run: these tests are about what submit accepts."""
    return make_service(hume_backend="v1", run_worker=False)


def _refused(response: Any, field: str) -> str:
    assert response.status_code == 422, (field, response.status_code, response.text)
    error = response.json()["error"]
    assert error["details"]["field"] == field, error
    message: str = error["message"]
    return message


# (models, the field refused or None when accepted); edges of each v1 rule.
RANGE_CASES = [
    ({"face": {"threshold": 1.01}}, "models.face.threshold"),
    ({"face": {"threshold": -0.01}}, "models.face.threshold"),
    ({"face": {"threshold": 0}}, None),
    ({"face": {"threshold": 1}}, None),
    ({"face": {"threshold": None}}, "models.face.threshold"),
    ({"face": {"threshold": "0.5"}}, "models.face.threshold"),
    ({"face": {"min_size": 0}}, "models.face.min_size"),
    ({"face": {"min_size": 1}}, None),
    ({"face": {"min_size": 1.5}}, "models.face.min_size"),
    ({"face": {"fps": 0}}, "models.face.fps"),
    ({"face": {"fps": 3.1}}, "models.face.fps"),
    ({"face": {"fps": 0.5}}, None),
    ({"face": {"fps": 3}}, None),
    ({"face": {"face_state": ""}}, "models.face.face_state"),
    ({"face": {"face_state": 7}}, "models.face.face_state"),
    ({"prosody": {"measurement_timer_ms": 2999}}, "models.prosody.measurement_timer_ms"),
    ({"prosody": {"measurement_timer_ms": 10001}}, "models.prosody.measurement_timer_ms"),
    ({"prosody": {"measurement_timer_ms": 3000}}, None),
    ({"prosody": {"measurement_timer_ms": 10000}}, None),
    ({"prosody": {"measurement_timer_ms": 4000.5}}, "models.prosody.measurement_timer_ms"),
]
RULES = {
    "models.face.threshold": "from 0 to 1",
    "models.face.min_size": "at least 1",
    "models.face.fps": "above 0 and at most 3",
    "models.face.face_state": "non-empty string",
    "models.prosody.measurement_timer_ms": "from 3000 to 10000",
}


def test_v1_option_ranges_are_checked_at_submit(submit_only: Service) -> None:
    """Each v1 rule at its edges: outside, a 422 naming the field and its allowed range; inside, the job is
    stored with the option as given (ints for integer fields, numbers for the rest)."""
    with submit_only.client() as client:
        for models, field in RANGE_CASES:
            response = client.post("/v1/jobs", json={"urls": [URL], "models": models})
            if field is None:
                assert response.status_code == 202, (models, response.text)
                job = response.json()
                assert job["backend"] == "v1" and job["request"]["models"] == models, job
            else:
                assert RULES[field] in _refused(response, field), (models, response.text)
        # The same rules apply when the body names the backend, whatever HUME_BACKEND says.
        response = client.post("/v1/jobs", json={"urls": [URL], "backend": "v1", "models": {"face": {"min_size": 0}}})
        _refused(response, "models.face.min_size")


BATCH_ONLY = [
    ("face", "prob_threshold", 0.99, "threshold"),
    ("face", "min_face_size", 0, "min_size"),
    ("face", "fps_pred", 3, "fps"),
    ("face", "identify_faces", True, "face_state"),
    ("face", "save_faces", True, "no face crops"),
    ("face", "facs", {}, "no FACS"),
    ("face", "descriptions", {}, "always returns descriptions"),
    ("prosody", "granularity", "utterance", "measurement_timer_ms"),
    ("prosody", "window", {"length": 4, "step": 1}, "measurement_timer_ms"),
    ("prosody", "identify_speakers", True, "does not identify speakers"),
]


def test_batch_only_options_on_a_v1_job_name_the_v1_option(submit_only: Service) -> None:
    """A batch option on a v1 job is refused, never translated: the message says it is batch's and what v1
    takes instead, where v1 has an equivalent."""
    with submit_only.client() as client:
        for model, option, value, hint in BATCH_ONLY:
            response = client.post("/v1/jobs", json={"urls": [URL], "models": {model: {option: value}}})
            message = _refused(response, f"models.{model}.{option}")
            assert "batch option" in message and hint in message, message
        threshold = _refused(
            client.post("/v1/jobs", json={"urls": [URL], "models": {"face": {"prob_threshold": 0.5}}}),
            "models.face.prob_threshold",
        )
        assert "does not carry over" in threshold  # the scales differ: 0.5 is not translated to threshold 0.5
        # A valid option beside a batch one does not let the job through.
        response = client.post("/v1/jobs", json={"urls": [URL], "models": {"face": {"threshold": 0.5, "fps_pred": 1}}})
        _refused(response, "models.face.fps_pred")
        assert client.get("/v1/jobs").json()["items"] == []


def test_unknown_options_are_refused(submit_only: Service) -> None:
    with submit_only.client() as client:
        message = _refused(
            client.post("/v1/jobs", json={"urls": [URL], "models": {"face": {"thresh": 0.5}}}), "models.face.thresh"
        )
        assert "unknown option" in message and "threshold, min_size, fps, face_state" in message
        message = _refused(
            client.post("/v1/jobs", json={"urls": [URL], "models": {"prosody": {"timer_ms": 4000}}}),
            "models.prosody.timer_ms",
        )
        assert "measurement_timer_ms" in message
        # v1 measures face and prosody only.
        _refused(client.post("/v1/jobs", json={"urls": [URL], "models": {"burst": {}}}), "models.burst")


def test_batch_jobs_keep_batch_options(make_service: ServiceFactory) -> None:
    """A batch job still takes batch's options (min_face_size 0 is valid there), checked by the batch SDK."""
    service = make_service(hume_backend="batch", run_worker=False)
    with service.client() as client:
        models = {"face": {"prob_threshold": 0.99, "min_face_size": 0, "identify_faces": True}, "prosody": {}}
        response = client.post("/v1/jobs", json={"urls": [URL], "models": models})
        assert response.status_code == 202, response.text
        assert response.json()["backend"] == "batch" and response.json()["request"]["models"] == models
        wrong = client.post("/v1/jobs", json={"urls": [URL], "models": {"face": {"prob_threshold": "high"}}})
        _refused(wrong, "models.face.prob_threshold")


def _no_nulls(value: Any, where: str = "config") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nulls(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_nulls(item, f"{where}[{i}]")
    else:
        assert value is not None, f"{where} was sent as null"


async def _run_configs(emulator: EmulatorServer, run_ids: list[str]) -> list[dict[str, Any]]:
    """The config each run ran under, as Hume's runs API reports it (read with the official SDK)."""
    environment = ExpressionMeasurementClientEnvironment(base=emulator.cloud_url, production=emulator.cloud_url)
    client = AsyncExpressionMeasurementClient(api_key=EMULATOR_KEY, environment=environment)
    runs = await asyncio.gather(*(client.runs.get(run_id) for run_id in run_ids))
    return [run.config.model_dump(mode="json", by_alias=True) for run in runs]


def _run_ids(service: Service, job_id: str, medium: str) -> list[str]:
    found = rows(
        service.database_url,
        "SELECT run_id FROM v1_chunk WHERE job_id = :id AND medium = :m AND chunk >= 0 ORDER BY chunk",
        id=job_id, m=medium,
    )  # fmt: skip
    return [r.run_id for r in found]


def test_options_reach_hume_as_set_and_nothing_null(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """The options a job set are what Hume receives, in every request, and a job that set none sends no
    null and no config it did not need; the runs Hume recorded ran under the job's values."""
    with wire_recorder(emulator.cloud_url) as (wire, wire_url):
        service = make_service(
            hume_backend="v1", hume_cloud_url=wire_url, allow_private_hosts="127.0.0.1",
            v1_audio_chunk_bytes=96_044, v1_frames_per_request=8,
        )  # fmt: skip
        urls = [f"{media}/media/talk.mp4"]
        models = {"face": {"threshold": 0.25, "min_size": 30, "fps": 2}, "prosody": {"measurement_timer_ms": 4000}}
        with service.client() as client:
            set_job = client.post("/v1/jobs", json={"urls": urls, "models": models}).json()
            assert wait_for_status(client, set_job["id"], FINAL, timeout=60)["status"] == "completed"
            audio, video = wire.sent(AUDIO), wire.sent(VIDEO)
            wire.clear()
            default_job = client.post("/v1/jobs", json={"urls": urls, "models": {"face": {}, "prosody": {}}}).json()
            assert wait_for_status(client, default_job["id"], FINAL, timeout=60)["status"] == "completed"
            default_audio, default_video = wire.sent(AUDIO), wire.sent(VIDEO)

    # 8 s at 2 frames/s is 16 frames, 8 a request; the audio is cut into ~3 s chunks.
    assert [s.files() for s in video] == [8, 8]
    assert len(audio) >= 2
    assert [s.config() for s in audio] == [{"measurement_timer_ms": 4000}] * len(audio)
    first, *rest = [s.config() for s in video]
    assert first == {"face": {"return_face_state": True, "threshold": 0.25, "min_size": 30}}
    for config in rest:  # later requests continue the first one's face ids
        assert isinstance(config.pop("face_state"), str)
        assert config == first
    for sent in [*audio, *video, *default_audio, *default_video]:
        _no_nulls(sent.config() or {})

    # Nothing set: no audio config part at all, and the video config asks only for the face state.
    assert default_audio and all(s.config() is None for s in default_audio)
    assert [s.files() for s in default_video] == [8, 8, 8]  # V1_FACE_FPS, 3 a second
    assert default_video[0].config() == {"face": {"return_face_state": True}}
    assert all(set(s.config()) == {"face", "face_state"} for s in default_video[1:])

    configs = asyncio.run(_run_configs(emulator, _run_ids(service, set_job["id"], "video")))
    assert [c["face"] for c in configs] == [{"threshold": 0.25, "min_size": 30}] * 2
    configs = asyncio.run(_run_configs(emulator, _run_ids(service, set_job["id"], "audio")))
    assert {c["measurement_timer_ms"] for c in configs} == {4000}


def _faces(client: Any, job_id: str) -> dict[tuple[float, ...], str]:
    """face id (group) by box, over the job's face predictions."""
    items = client.get(f"/v1/jobs/{job_id}/predictions", params={"model": "face", "limit": 5000}).json()["items"]
    assert items, "no face was measured"
    by_box: dict[tuple[float, ...], set[str]] = {}
    for p in items:
        by_box.setdefault(tuple(p["box"].values()), set()).add(p["group"])
    assert all(len(groups) == 1 for groups in by_box.values()), by_box
    return {box: groups.pop() for box, groups in by_box.items()}


def test_face_ids_continue_across_jobs_through_face_state(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """A job's details give each source's last face_state; a later job passing it keeps the same faces under
    the same ids, where without it ids restart at 0."""
    with wire_recorder(emulator.cloud_url) as (wire, wire_url):
        service = make_service(
            hume_backend="v1", hume_cloud_url=wire_url, allow_private_hosts="127.0.0.1", v1_frames_per_request=8
        )
        with service.client() as client:
            face = EVERY_FACE  # more faces to follow
            body = {"urls": [f"{media}/media/talk.mp4"], "models": {"face": face}}
            first = client.post("/v1/jobs", json=body).json()
            first = wait_for_status(client, first["id"], FINAL, timeout=60)
            assert first["status"] == "completed", first
            [carried] = first["details"]["face_states"]
            assert carried["source"] == 0 and carried["url"].endswith("/talk.mp4") and carried["issued_at"]
            assert (
                carried["face_state"]
                == rows(
                    service.database_url,
                    "SELECT face_state FROM v1_chunk WHERE job_id = :id AND medium = 'video' AND chunk >= 0"
                    " ORDER BY chunk DESC LIMIT 1",
                    id=first["id"],
                )[0].face_state
            )  # the source's final state, not an earlier chunk's

            other = [f"{media}/media/other.mp4"]
            wire.clear()
            body = {"urls": other, "models": {"face": {**face, "face_state": carried["face_state"]}}}
            continued = client.post("/v1/jobs", json=body).json()
            assert wait_for_status(client, continued["id"], FINAL, timeout=60)["status"] == "completed"
            assert wire.sent(VIDEO)[0].config()["face_state"] == carried["face_state"]
            fresh = client.post("/v1/jobs", json={"urls": other, "models": {"face": face}}).json()
            assert wait_for_status(client, fresh["id"], FINAL, timeout=60)["status"] == "completed"

            before, after, restarted = (_faces(client, j["id"]) for j in (first, continued, fresh))
    shared = set(before) & set(after)
    assert shared, "the two videos share no face position: nothing to compare"
    # Without the state, the second video numbers its faces its own way (else this test could not fail)...
    assert any(restarted[box] != before[box] for box in shared), (before, restarted)
    assert "face_0" in restarted.values()
    # ...with it, each face the first job saw keeps its id.
    assert {box: after[box] for box in shared} == {box: before[box] for box in shared}
