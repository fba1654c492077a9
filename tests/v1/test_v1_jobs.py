"""v1 jobs end to end: media served over a real socket, the service and the emulator's v1 API on real
sockets, real Postgres. Submit with backend=v1, wait, read summary/timeline/CSV like a batch job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app.config.sources import libpq_url
from tests.conftest import Service, ServiceFactory
from tests.e2e.test_spine import wait_for_status
from tests.v1.media_server import EVERY_FACE, make_media, media_server

FINAL = {"completed", "failed", "rejected"}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("media")
    make_media(directory)
    return directory


@pytest.fixture(scope="module")
def media(media_dir: Path) -> Iterator[str]:
    with media_server(media_dir) as url:
        yield url


@pytest.fixture
def v1_service(make_service: ServiceFactory) -> Service:
    # The guard exempts only the local media server's address; 10.x and 169.254.x stay refused.
    return make_service(
        allow_private_hosts="127.0.0.1", media_max_bytes=4 << 20, media_fetch_read_timeout_s=1.0,
        v1_audio_chunk_bytes=96_044, v1_frames_per_request=8,
    )  # fmt: skip


def rows(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(libpq_url(database_url).replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def expect_means(database_url: str, job_id: str, summary: dict[str, Any]) -> None:
    """Means recomputed from Hume's stored responses, apart from the store: an expression a prediction
    lacks counts as 0; `present` is the share of predictions that listed it."""
    scored: dict[str, list[dict[str, float]]] = {"prosody": [], "face": []}
    for medium, result in rows(
        database_url, "SELECT medium, result FROM v1_chunk WHERE job_id = :id AND chunk >= 0", id=job_id
    ):
        if medium == "audio":
            for m in result["measurements"]:
                scored["prosody"].append({e["name"]: e["probability"] for e in m["expressions"]})
        else:
            for image in result["measurements"]:
                for face in image["faces"]:
                    if face.get("face_id") is not None:
                        scored["face"].append({e["name"]: e["probability"] for e in face.get("expressions", [])})
    for model, predictions in scored.items():
        got = {e["name"]: e for e in summary[model]["emotions"]}
        names = {name for p in predictions for name in p}
        assert set(got) == names and summary[model]["predictions"] == len(predictions)
        for name in names:
            mean = sum(p.get(name, 0.0) for p in predictions) / len(predictions)
            present = sum(name in p for p in predictions) / len(predictions)
            # The API rounds scores to 4 decimals (what a float4 score carries).
            assert got[name]["mean"] == pytest.approx(mean, abs=5.1e-5), (model, name)
            assert got[name]["present"] == pytest.approx(present, abs=5.1e-5), (model, name)
            assert got[name]["max"] == pytest.approx(max(p.get(name, 0.0) for p in predictions), abs=5.1e-5)


def test_v1_job_completes_and_is_queryable(v1_service: Service, media: str) -> None:
    urls = [f"{media}/media/talk.mp4", f"{media}/media/voice.wav"]
    with v1_service.client() as client:
        models = {"prosody": {}, "face": EVERY_FACE}
        response = client.post("/v1/jobs", json={"urls": urls, "backend": "v1", "models": models})
        assert response.status_code == 202, response.text
        assert response.json()["backend"] == "v1"
        job = wait_for_status(client, response.json()["id"], FINAL, timeout=60)
        assert job["status"] == "completed", job
        # The WAV has no picture and face was asked for: that one model of that one source failed.
        assert job["num_errors"] == 1

        summary = client.get(f"/v1/jobs/{job['id']}/summary").json()["models"]
        assert set(summary) == {"prosody", "face"}
        assert summary["prosody"]["predictions"] > 0 and summary["face"]["predictions"] > 0
        assert sum(m["predictions"] for m in summary.values()) == job["num_predictions"]
        for model in summary.values():
            assert all(e["name"] == e["name"].lower() for e in model["emotions"])
            assert all(0 < e["present"] <= 1 and 0 <= e["mean"] <= e["max"] for e in model["emotions"])

        for model in ("prosody", "face"):
            top = summary[model]["emotions"][0]["name"]
            points = client.get(
                f"/v1/jobs/{job['id']}/timeline", params={"model": model, "emotion": top, "bucket": 1}
            ).json()["points"]
            assert points and all(p["time_begin"] < 9 for p in points)

        csv_lines = client.get(f"/v1/jobs/{job['id']}/predictions.csv").text.strip().splitlines()
        assert len(csv_lines) == job["num_predictions"] + 1

    expect_means(v1_service.database_url, job["id"], summary)
    chunks = rows(
        v1_service.database_url,
        "SELECT source_index, medium, chunk, start_ms, request_id, run_id FROM v1_chunk"
        " WHERE job_id = :id AND chunk >= 0 ORDER BY 1, 2, 3",
        id=job["id"],
    )
    # 8 s of audio at ~3 s a chunk, 24 frames at 8 a request; every chunk once, with Hume's ids.
    audio = [c for c in chunks if c.medium == "audio" and c.source_index == 0]
    video = [c for c in chunks if c.medium == "video"]
    assert [c.chunk for c in audio] == [0, 1, 2] and [c.chunk for c in video] == [0, 1, 2]
    assert all(c.request_id and c.run_id for c in chunks)
    starts = [c.start_ms for c in audio]
    assert starts[0] == 0 and starts == sorted(starts)
    times = rows(
        v1_service.database_url,
        "SELECT max(time_end) FROM prediction WHERE job_id = :id AND model = 'prosody'",
        id=job["id"],
    )
    assert 6.0 < times[0][0] <= 8.1  # offsets were added back: the last chunk's speech lands at its place


def test_bad_sources_become_per_source_errors(v1_service: Service, media: str) -> None:
    bad = {
        "http://10.1.2.3/a.mp4": "blocked_url",
        f"{media}/to?url=http://169.254.169.254/latest/meta-data": "blocked_url",
        f"{media}/media/notes.txt": "media_undecodable",
        f"{media}/media/cut.mp4": "media_undecodable",
        f"{media}/huge.mp4": "media_too_large",
        # HTTP/1.1 ends a body at its Content-Length: the excess is a broken response, not extra bytes.
        f"{media}/lying.mp4": "fetch_failed",
        f"{media}/stall.mp4": "fetch_failed",
    }
    urls = [f"{media}/media/talk.mp4", *bad]
    with v1_service.client() as client:
        response = client.post("/v1/jobs", json={"urls": urls, "backend": "v1", "models": {"face": EVERY_FACE}})
        assert response.status_code == 202, response.text
        job = wait_for_status(client, response.json()["id"], FINAL, timeout=60)
        assert job["status"] == "completed", job
        assert job["num_errors"] == len(bad)
        assert client.get(f"/v1/jobs/{job['id']}/summary").json()["models"]["face"]["predictions"] > 0
        audio_only = client.post(
            "/v1/jobs", json={"urls": [f"{media}/media/song.m4a"], "backend": "v1", "models": {"face": {}}}
        ).json()
        audio_job = wait_for_status(client, audio_only["id"], FINAL, timeout=60)
        assert audio_job["status"] == "completed" and audio_job["num_errors"] == 1
    errors = rows(
        v1_service.database_url,
        "SELECT s.url, s.error, c.error_code FROM source s JOIN v1_chunk c ON c.job_id = s.job_id"
        " AND c.source_index = s.position AND c.chunk = -1 WHERE s.job_id IN (:a, :b) ORDER BY s.position",
        a=job["id"], b=audio_job["id"],
    )  # fmt: skip
    by_url = {r.url: r for r in errors}
    assert by_url[urls[0]].error is None
    for url, code in bad.items():
        assert by_url[url].error_code == code, by_url[url]
        assert by_url[url].error and "\n" not in by_url[url].error
    assert (
        "10.1.2.3" in by_url["http://10.1.2.3/a.mp4"].error
        and "ALLOW_PRIVATE_HOSTS" in by_url["http://10.1.2.3/a.mp4"].error
    )
    assert by_url[f"{media}/media/song.m4a"].error_code == "no_video_stream"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"urls": ["https://example.com/a.mp4"], "backend": "v1", "models": {"language": {}}}, "models.language"),
        ({"urls": ["https://example.com/a.mp4"], "backend": "v1", "models": {"burst": {}}}, "models.burst"),
        ({"text": ["hello"], "backend": "v1"}, "text"),
        ({"urls": ["https://example.com/a.mp4"], "backend": "v2"}, "backend"),
    ],
)
def test_what_v1_cannot_measure_is_a_422(service: Service, body: dict[str, Any], field: str) -> None:
    with service.client() as client:
        response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error["message"] or error.get("field") == field, error
