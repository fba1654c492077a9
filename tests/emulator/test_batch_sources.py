"""Batch sources and listings: local files, archives, raw text, failures, artifacts, list filters."""

from __future__ import annotations

import csv
import hashlib
import io
import time
import wave
import zipfile

import httpx
import pytest
from hume import HumeClient
from hume.core.api_error import ApiError
from hume.expression_measurement.batch import Face, InferenceBaseRequest, Language, Models, Ner, Prosody

from app.emulator.labels import EMOTIONS_48
from app.emulator.testing import EmulatorServer

from .helpers import wait_done


def _wav(seconds: float, rate: int = 16_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def test_local_files_upload_as_multipart(client: HumeClient) -> None:
    """start_inference_job_from_local_file sends `file` parts plus a `json` part; each file becomes
    a `file` source with its md5sum, echoed in request.files, and a WAV's real length is used."""
    batch = client.expression_measurement.batch
    audio = _wav(6.0)
    image = b"\xff\xd8\xff\xe0fake-jpeg-bytes"
    job_id = batch.start_inference_job_from_local_file(
        file=[("speech.wav", audio, "audio/wav"), ("face.jpg", image, "image/jpeg")],
        json=InferenceBaseRequest(models=Models(prosody=Prosody(), face=Face())),
    )
    job = wait_done(client, job_id)
    assert job.state.status == "COMPLETED"
    files = [f.model_dump(by_alias=True) for f in job.request.files]
    assert files == [
        {
            "filename": "speech.wav",
            "content_type": "audio/wav",
            "md5sum": hashlib.md5(audio, usedforsecurity=False).hexdigest(),
        },
        {
            "filename": "face.jpg",
            "content_type": "image/jpeg",
            "md5sum": hashlib.md5(image, usedforsecurity=False).hexdigest(),
        },
    ]
    results = batch.get_job_predictions(job_id)
    assert [r.source.type for r in results] == ["file", "file"]
    assert results[0].source.filename == "speech.wav"
    speech = results[0].results
    assert speech is not None and speech.predictions[0].model_extra == {"file_type": "audio"}
    prosody = speech.predictions[0].models.prosody
    assert prosody is not None and max(p.time.end for p in prosody.grouped_predictions[0].predictions) <= 6.0
    face = results[1].results
    assert face is not None and face.predictions[0].models.face is not None
    frames = face.predictions[0].models.face.grouped_predictions[0].predictions
    assert [(p.frame, p.time) for p in frames] == [(0, 0.0)]  # an image is one frame


def test_local_file_without_json_part_runs_all_models(client: HumeClient) -> None:
    """Without a `json` part every applicable model runs (Hume's default)."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job_from_local_file(file=[("clip.wav", _wav(3.0), "audio/wav")])
    wait_done(client, job_id)
    res = batch.get_job_predictions(job_id)[0].results
    assert res is not None
    assert set(res.predictions[0].models.model_dump(exclude_none=True)) == {"prosody", "burst", "language", "ner"}


def test_archive_yields_several_files(client: HumeClient) -> None:
    """An archive URL yields several `file`s under the archive's name, a deterministic count."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job(urls=["https://example.com/faces.zip#files=4"], models=Models(face=Face()))
    wait_done(client, job_id)
    res = batch.get_job_predictions(job_id)[0].results
    assert res is not None
    names = [p.file for p in res.predictions]
    assert len(names) == 4 and all(n.startswith("faces/") for n in names)
    again = batch.start_inference_job(urls=["https://example.com/faces.tar.gz"])
    wait_done(client, again)
    res2 = batch.get_job_predictions(again)[0].results
    assert res2 is not None and 2 <= len(res2.predictions) <= 6


def test_text_sources_give_language_and_ner(client: HumeClient) -> None:
    """Raw text forms one `text` source; positions index into the caller's strings."""
    batch = client.expression_measurement.batch
    texts = ["I moved to Paris on Monday. It was great!", "Thanks, Google."]
    job_id = batch.start_inference_job(text=texts, models=Models(language=Language(sentiment={}), ner=Ner()))
    wait_done(client, job_id)
    (result,) = batch.get_job_predictions(job_id)
    assert result.source.type == "text" and result.results is not None
    for text, pred in zip(texts, result.results.predictions, strict=True):
        assert pred.model_extra == {"file_type": "text"}
        language = pred.models.language
        assert language is not None
        for p in language.grouped_predictions[0].predictions:
            assert text[p.position.begin : p.position.end] == p.text
            assert p.time is None and p.sentiment is not None
    ner = result.results.predictions[0].models.ner
    assert ner is not None
    entities = {p.entity for p in ner.grouped_predictions[0].predictions}
    assert entities == {"Paris", "Monday"}


def test_source_and_file_errors(client: HumeClient) -> None:
    """#source_error fails a whole source (`error`, no results); #file_error adds `results.errors`."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job(
        urls=[
            "https://example.com/gone.mp4#source_error",
            "https://example.com/set.zip#files=3&file_error",
            "https://example.com/ok.jpg",
        ]
    )
    job = wait_done(client, job_id)
    assert job.state.status == "COMPLETED"
    assert job.state.num_errors == 2 and job.state.num_predictions == 3
    gone, archive, ok = batch.get_job_predictions(job_id)
    assert gone.results is None and gone.error and "404" in gone.error
    assert archive.results is not None and len(archive.results.predictions) == 2
    assert len(archive.results.errors) == 1 and archive.results.errors[0].file.startswith("set/")
    assert archive.results.errors[0].message
    assert ok.results is not None and ok.error is None


def test_failed_job_state_and_predictions_refused(client: HumeClient) -> None:
    """A #fail job ends FAILED with a message; its predictions are refused with 400."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job(urls=["https://example.com/x.mp4#fail"])
    job = wait_done(client, job_id)
    assert job.state.status == "FAILED"
    assert job.state.message and job.state.ended_timestamp_ms >= job.state.started_timestamp_ms
    with pytest.raises(ApiError) as err:
        batch.get_job_predictions(job_id)
    assert err.value.status_code == 400


def test_invalid_requests_are_rejected(client: HumeClient) -> None:
    """Hume rejects requests with nothing to process, too many URLs or bad settings (400), and unknown ids (404)."""
    batch = client.expression_measurement.batch
    for kwargs in (
        {},
        {"urls": [f"https://example.com/{i}.mp4" for i in range(101)]},
        {"urls": ["ftp://example.com/a.mp4"]},
        {"urls": ["https://example.com/a.mp4"], "models": Models(prosody=Prosody(granularity="paragraph"))},
    ):
        with pytest.raises(ApiError) as err:
            batch.start_inference_job(**kwargs)
        assert err.value.status_code == 400
    with pytest.raises(ApiError) as err:
        batch.get_job_details("00000000-0000-0000-0000-000000000000")
    assert err.value.status_code == 404


def test_artifacts_zip_holds_per_model_csvs(client: HumeClient) -> None:
    """The artifacts ZIP has one CSV per model with every emotion as a column and a row per prediction."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job(
        urls=["https://example.com/talk.mp4#duration=10"], models=Models(face=Face(), prosody=Prosody())
    )
    wait_done(client, job_id)
    data = b"".join(batch.get_job_artifacts(job_id))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["face.csv", "prosody.csv"]
        rows = list(csv.reader(io.StringIO(zf.read("face.csv").decode())))
    header = rows[0]
    assert header[-48:] == list(EMOTIONS_48) and header[:4] == ["source", "file", "id", "frame"]
    res = batch.get_job_predictions(job_id)[0].results
    assert res is not None and res.predictions[0].models.face is not None
    n_face = sum(len(g.predictions) for g in res.predictions[0].models.face.grouped_predictions)
    assert len(rows) - 1 == n_face == 30


def test_list_jobs_filters_sort_and_limit(client: HumeClient) -> None:
    """list_jobs honours status, when + timestamp_ms, sort_by, direction and limit."""
    batch = client.expression_measurement.batch
    first = batch.start_inference_job(urls=["https://example.com/1.jpg"])
    time.sleep(0.01)
    middle_ms = int(time.time() * 1000)
    time.sleep(0.01)
    second = batch.start_inference_job(urls=["https://example.com/2.jpg#fail"])
    third = batch.start_inference_job(urls=["https://example.com/3.jpg"])
    for j in (first, second, third):
        wait_done(client, j)
    assert [j.job_id for j in batch.list_jobs()] == [third, second, first]  # newest first
    assert [j.job_id for j in batch.list_jobs(direction="asc", limit=2)] == [first, second]
    assert [j.job_id for j in batch.list_jobs(status="FAILED")] == [second]
    assert {j.job_id for j in batch.list_jobs(status=["COMPLETED", "FAILED"])} == {first, second, third}
    assert [j.job_id for j in batch.list_jobs(when="created_before", timestamp_ms=middle_ms)] == [first]
    assert [j.job_id for j in batch.list_jobs(when="created_after", timestamp_ms=middle_ms, direction="asc")] == [
        second,
        third,
    ]
    by_end = batch.list_jobs(sort_by="ended", direction="asc")
    ends = [j.state.ended_timestamp_ms for j in by_end]
    assert ends == sorted(ends)
    with pytest.raises(ApiError) as err:
        batch.list_jobs(status="DONE")
    assert err.value.status_code == 400


def test_save_faces_adds_face_crops_to_the_artifacts(client: HumeClient) -> None:
    """With face.save_faces the artifacts ZIP also holds a PNG per detected face (placeholders)."""
    batch = client.expression_measurement.batch
    job_id = batch.start_inference_job(urls=["https://example.com/p.jpg"], models=Models(face=Face(save_faces=True)))
    wait_done(client, job_id)
    with zipfile.ZipFile(io.BytesIO(b"".join(batch.get_job_artifacts(job_id)))) as zf:
        crops = [n for n in zf.namelist() if n.startswith("faces/")]
        assert crops == ["faces/p.jpg/unknown_0.png"]
        assert zf.read(crops[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_as_form_field_like_curl_and_the_raw_client(client: HumeClient, emu: EmulatorServer) -> None:
    """The `json` part also works as a plain form field (curl, the generated raw client); an
    extension-less upload is classified by its content type."""
    raw = client.expression_measurement.batch.with_raw_response.start_inference_job_from_local_file(
        file=[("recording", _wav(2.0), "audio/wav")],
        json=InferenceBaseRequest(models=Models(prosody=Prosody(granularity="word"))),
    )
    job = wait_done(client, raw.data)
    models = job.request.models
    assert models is not None
    assert models.prosody is not None and models.prosody.granularity == "word"
    assert models.face is None
    res = client.expression_measurement.batch.get_job_predictions(raw.data)[0].results
    assert res is not None and res.predictions[0].model_extra == {"file_type": "audio"}
    resp = httpx.post(
        f"{emu.base_url}/v0/batch/jobs",
        headers={"X-Hume-Api-Key": "k"},
        data={"json": '{"models": {"face": {}}}'},
        files={"file": ("p.png", b"\x89PNG....", "image/png")},
    )
    assert resp.status_code == 200 and resp.json()["job_id"]
