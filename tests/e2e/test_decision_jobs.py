"""Decision jobs end to end: recordings made with PyAV served over a socket, the service and the emulator's Audio
Decisions API on real sockets, real Postgres. A job asks a question set about each recording window by window,
stores each window's answers with its span, and ends once through the one end path (job.completed, signed)."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import Service, ServiceFactory, create_key
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_mp4, make_wav
from tests.v1.media_server import media_server
from tests.v1.test_v1_jobs import FINAL, rows
from tests.webhook_receiver import Receiver

# Two minutes of tone with a pause near each 30 s boundary (the cuts go there) and one inside the first window.
GAPS = [(10.0, 11.0), (29.0, 29.4), (61.0, 61.4), (89.0, 89.4)]
QUESTIONS: list[dict[str, Any]] = [
    {"id": "loud", "type": "noul", "instructions": "Is the recording loud?", "criteria": {"true": "loud"}},
    {"id": "pitch", "type": "score", "instructions": "How high is the pitch?", "criteria": ["low", "mid", "high"]},
    {"id": "kind", "type": "choice", "instructions": "What is it?", "criteria": {"tone": "a tone", "voice": "a voice"}},
    {"id": "sound", "type": "span", "instructions": "When is there sound?", "criteria": None},
]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("decision-media")
    make_wav(directory / "talk.wav", 120.0, rate=16_000, gaps=GAPS)
    make_wav(directory / "short.wav", 20.0, rate=16_000)
    make_wav(directory / "blip.wav", 0.5, rate=16_000)
    make_wav(directory / "quiet.wav", 8.0, rate=16_000, gaps=[(0.0, 8.0)])
    make_mp4(directory / "film.mp4", 2.0, audio=False)
    (directory / "junk.wav").write_bytes(b"RIFF not really a recording" * 50)
    with media_server(directory) as url:
        yield url


@pytest.fixture
def decisions_service(make_service: ServiceFactory) -> Service:
    # Decision jobs fetch the media themselves: the guard exempts only the local media server's address.
    return make_service(allow_private_hosts="127.0.0.1")


def set_body(questions: list[dict[str, Any]]) -> dict[str, Any]:
    """A question set as POST /v1/question-sets takes it: questions by id, in order."""
    by_id = {q["id"]: {k: v for k, v in q.items() if k != "id" and v is not None} for q in questions}
    return {"name": "calls", "context": "A tone test.", "questions": by_id}


def make_set(service: Service, questions: list[dict[str, Any]] = QUESTIONS, *, key: str | None = None) -> str:
    with service.client(key) as client:
        response = client.post("/v1/question-sets", json=set_body(questions))
    assert response.status_code == 201, response.text
    set_id: str = response.json()["id"]
    return set_id


def answers(database_url: str, job_id: str) -> list[Any]:
    return rows(
        database_url,
        "SELECT source_index, window_index, window_start_ms, window_end_ms, question_id, primitive, share, choice,"
        " score, spans, raw, question_set_id FROM decision_answer WHERE job_id = :id"
        " ORDER BY source_index, window_index, question_id",
        id=job_id,
    )


def test_a_two_minute_recording_in_30_s_windows_is_answered_window_by_window_and_announced(
    decisions_service: Service, media: str
) -> None:
    set_id = make_set(decisions_service)
    with decisions_service.client() as client, Receiver() as receiver:
        endpoint = client.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["job.completed"]})
        receiver.secrets.append(endpoint.json()["secret"])
        body = {"urls": [f"{media}/media/talk.wav"], "decisions": {"question_set": set_id, "window_s": 30}}
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        assert response.json()["backend"] == "v1"
        job = wait_for_status(client, response.json()["id"], FINAL, timeout=60)
        [delivery] = receiver.wait_for(1)
    assert job["status"] == "completed" and job["num_errors"] == 0, job
    assert delivery.payload["type"] == "job.completed" and delivery.payload["data"]["job"]["id"] == job["id"]
    assert delivery.verified_by == [endpoint.json()["secret"]]
    answers_link = delivery.payload["data"]["links"]["answers"]
    assert answers_link.endswith(f"/v1/jobs/{job['id']}/answers")

    stored = answers(decisions_service.database_url, job["id"])
    assert len(stored) == 4 * len(QUESTIONS)
    windows = sorted({(r.window_index, r.window_start_ms, r.window_end_ms) for r in stored})
    assert [w[0] for w in windows] == [0, 1, 2, 3]
    assert windows[0][1] == 0 and windows[-1][2] == 120_000
    for (_, _, end), (_, start, _) in itertools.pairwise(windows):
        assert end == start
        assert any(a * 1000 <= end <= b * 1000 for a, b in GAPS), f"cut at {end} ms, outside every pause"
    assert {r.question_set_id for r in stored} == {uuid.UUID(set_id)}
    by_question = {(r.window_index, r.question_id): r for r in stored}
    for index in range(4):
        assert 0 <= by_question[index, "loud"].share <= 1
        assert by_question[index, "kind"].choice in {"tone", "voice"}
        assert 0 <= by_question[index, "pitch"].score <= 2
        assert by_question[index, "loud"].raw  # Hume's answer kept as it came
    # The first window hears the tone, a 1 s pause at 10-11 s, then the tone again: two spans, in ms of the window.
    spans = by_question[0, "sound"].spans
    assert len(spans) == 2 and spans[0]["start_ms"] < 10_000 < 11_000 <= spans[1]["start_ms"] + 100
    decisions = job["details"]["decisions"]
    assert decisions["question_set"]["id"] == set_id and decisions["window_s"] == 30
    [source] = decisions["sources"]
    assert source["windows"] == source["answered"] == 4 and source["error"] is None
    assert source["input_tokens"] > 0 and decisions["input_tokens"] == source["input_tokens"]
    assert job["request"]["decisions"]["version"] == 1


BAD = {
    "blip.wav": "audio_too_short",
    "quiet.wav": "audio_silent",
    "film.mp4": "no_audio_stream",
    "junk.wav": "media_undecodable",
}


def test_short_silent_soundless_and_undecodable_files_are_errors_of_their_own_source(
    decisions_service: Service, emulator: EmulatorServer, media: str
) -> None:
    set_id = make_set(decisions_service)
    urls = [f"{media}/media/short.wav", *(f"{media}/media/{name}" for name in BAD)]
    with decisions_service.client() as client:
        response = client.post("/v1/jobs", json={"urls": urls, "decisions": {"question_set": set_id}})
        assert response.status_code == 202, response.text
        job = wait_for_status(client, response.json()["id"], FINAL, timeout=60)
    assert job["status"] == "completed" and job["num_errors"] == len(BAD), job
    sources = job["details"]["decisions"]["sources"]
    assert sources[0]["error"] is None and sources[0]["answered"] == 1
    for source, name in zip(sources[1:], BAD, strict=True):
        assert source["error"]["code"] == BAD[name], source
        assert source["answered"] == 0 and "\n" not in source["error"]["message"]
    # Nothing was sent to Hume for them: one request, for the one good window.
    assert emulator.calls().get("POST /v0/decisions/file") == 1
    stored = rows(
        decisions_service.database_url,
        "SELECT position, error FROM source WHERE job_id = :id ORDER BY position",
        id=job["id"],
    )
    assert stored[0].error is None and all(BAD[name] in s.error for s, name in zip(stored[1:], BAD, strict=True))


def test_an_estimate_answers_at_once_and_creates_no_job(decisions_service: Service, media: str) -> None:
    set_id = make_set(decisions_service)
    body = {
        "urls": [f"{media}/media/talk.wav", f"{media}/media/blip.wav"],
        "decisions": {"question_set": set_id, "window_s": 60, "estimate": True},
    }
    with decisions_service.client() as client:
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 200, response.text
        estimate = response.json()
        assert client.get("/v1/jobs").json()["items"] == []
    talk, blip = estimate["sources"]
    assert estimate["estimate"] is True and estimate["question_set"]["id"] == set_id
    assert len(talk["windows"]) == 2 and talk["windows"][0]["start_ms"] == 0
    assert talk["audio_ms"] == 120_000 and all(w["input_tokens"] > 0 for w in talk["windows"])
    assert talk["input_tokens"] == sum(w["input_tokens"] for w in talk["windows"]) == estimate["input_tokens"]
    assert blip["error"]["code"] == "audio_too_short" and blip["windows"] == []


def test_a_set_edited_while_a_job_runs_does_not_change_the_job(
    decisions_service: Service, emulator: EmulatorServer, media: str
) -> None:
    set_id = make_set(decisions_service)
    # Each answer takes a second, so the edit lands between the job's windows.
    emulator.set_faults(path="/v0/decisions/file", delay_s=1.0)
    with decisions_service.client() as client:
        body = {"urls": [f"{media}/media/talk.wav"], "decisions": {"question_set": set_id, "window_s": 30}}
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        edited = [{"id": "other", "type": "noul", "instructions": "Is anyone there?", "criteria": None}]
        _wait_for_answers(decisions_service.database_url, job_id, 1)
        new_id = _edit_set(decisions_service, set_id, edited)
        job = wait_for_status(client, job_id, FINAL, timeout=60)
    assert job["status"] == "completed"
    stored = answers(decisions_service.database_url, job_id)
    assert len(stored) == 4 * len(QUESTIONS)
    assert {r.question_set_id for r in stored} == {uuid.UUID(set_id)} and new_id != set_id
    assert {r.question_id for r in stored} == {q["id"] for q in QUESTIONS}


def test_an_archived_or_another_tenants_set_is_a_422(decisions_service: Service, media: str) -> None:
    acme = create_key(decisions_service.database_url, ["submit", "read"], name="acme", tenant="acme")
    other = make_set(decisions_service, key=acme)
    archived = make_set(decisions_service)
    url = f"{media}/media/short.wav"
    with decisions_service.client() as client:
        assert client.post(f"/v1/question-sets/{archived}/archive").status_code == 200
        for set_id in (other, str(uuid.uuid4()), archived):
            response = client.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_id}})
            assert response.status_code == 422, response.text
            assert "decisions.question_set" in response.text
        assert "archived" in response.text
        assert client.get("/v1/jobs").json()["items"] == []
        for bad, field in (
            ({"question_set": other, "window_s": 4}, "window_s"),
            ({"question_set": other, "window_s": 301}, "window_s"),
            ({"question_set": "not-an-id"}, "question_set"),
        ):
            response = client.post("/v1/jobs", json={"urls": [url], "decisions": bad})
            assert response.status_code == 422 and field in response.text, response.text
        response = client.post(
            "/v1/jobs", json={"urls": [url], "backend": "batch", "decisions": {"question_set": other}}
        )
        assert response.status_code == 422 and "backend" in response.text


def test_hume_payment_refused_fails_the_job_naming_it_and_every_source(
    decisions_service: Service, emulator: EmulatorServer, media: str
) -> None:
    set_id = make_set(decisions_service)
    emulator.set_faults(path="/v0/decisions/file", status=402)
    urls = [f"{media}/media/short.wav", f"{media}/media/talk.wav"]
    with decisions_service.client() as client:
        job_id = client.post("/v1/jobs", json={"urls": urls, "decisions": {"question_set": set_id}}).json()["id"]
        job = wait_for_status(client, job_id, FINAL, timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "hume_payment_required", job
    assert "payment" in job["error"]["message"]
    codes = [s["error"]["code"] for s in job["details"]["decisions"]["sources"]]
    assert codes == ["hume_payment_required", "hume_payment_required"]
    # Refused once: the second source was not asked.
    assert emulator.calls().get("POST /v0/decisions/file") == 1


def test_hume_rate_limit_is_waited_out(decisions_service: Service, emulator: EmulatorServer, media: str) -> None:
    set_id = make_set(decisions_service)
    emulator.set_faults(path="/v0/decisions/file", status=429, times=2, retry_after=1)
    with decisions_service.client() as client:
        body = {"urls": [f"{media}/media/short.wav"], "decisions": {"question_set": set_id}}
        job = wait_for_status(client, client.post("/v1/jobs", json=body).json()["id"], FINAL, timeout=60)
    assert job["status"] == "completed" and job["num_errors"] == 0, job
    assert len(answers(decisions_service.database_url, job["id"])) == len(QUESTIONS)
    assert emulator.calls().get("POST /v0/decisions/file") == 3


def _wait_for_answers(database_url: str, job_id: str, windows: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(database_url, "SELECT count(DISTINCT window_index) FROM decision_answer WHERE job_id = :id",
                     id=job_id)[0][0]  # fmt: skip
        if found >= windows:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stored fewer than {windows} windows in {timeout} s")


def _edit_set(service: Service, set_id: str, questions: list[dict[str, Any]]) -> str:
    with service.client() as client:
        response = client.put(f"/v1/question-sets/{set_id}", json=set_body(questions))
    assert response.status_code in (200, 201), response.text
    new_id: str = response.json()["id"]
    return new_id


def test_models_beside_decisions_run_both_and_end_once(decisions_service: Service, media: str) -> None:
    set_id = make_set(decisions_service)
    urls = [f"{media}/media/short.wav", f"{media}/media/quiet.wav"]
    with decisions_service.client() as client, Receiver() as receiver:
        endpoint = client.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["job.completed"]})
        receiver.secrets.append(endpoint.json()["secret"])
        body = {"urls": urls, "models": {"prosody": {}}, "decisions": {"question_set": set_id}}
        job = wait_for_status(client, client.post("/v1/jobs", json=body).json()["id"], FINAL, timeout=60)
        summary = client.get(f"/v1/jobs/{job['id']}/summary").json()["models"]
        deliveries = receiver.wait_for(1)
    assert job["status"] == "completed", job
    assert summary["prosody"]["predictions"] > 0
    assert len(answers(decisions_service.database_url, job["id"])) == len(QUESTIONS)
    assert len(deliveries) == 1
    # The silent file: the decisions' error is one of the job's errors, beside whatever prosody found.
    file_errors = rows(
        decisions_service.database_url, "SELECT file_errors FROM source WHERE job_id = :id AND position = 1",
        id=job["id"],
    )[0][0]  # fmt: skip
    assert any(e["model"] == "decisions" and "audio_silent" in e["error"] for e in file_errors)


def test_hume_busy_mid_job_pauses_it_and_it_resumes_where_it_stopped(
    decisions_service: Service, emulator: EmulatorServer, media: str
) -> None:
    """Busy past the client's retries after a window was stored: the job is queued to resume later, and the
    resumed run asks only the windows not answered yet."""
    set_id = make_set(decisions_service)
    emulator.set_faults(path="/v0/decisions/file", delay_s=1.0)
    with decisions_service.client() as client:
        body = {"urls": [f"{media}/media/talk.wav"], "decisions": {"question_set": set_id, "window_s": 30}}
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        _wait_for_answers(decisions_service.database_url, job_id, 1)
        # Window 1 is past the fault check (held by the delay); window 2 meets 503 on all 4 of the client's tries.
        emulator.set_faults({"clear": True}, {"path": "/v0/decisions/file", "status": 503, "times": 4})
        job = wait_for_status(client, job_id, FINAL, timeout=60)
    assert job["status"] == "completed" and job["num_errors"] == 0, job
    stored = answers(decisions_service.database_url, job_id)
    assert sorted({r.window_index for r in stored}) == [0, 1, 2, 3] and len(stored) == 4 * len(QUESTIONS)
    assert emulator.calls().get("POST /v0/decisions/file") == 4 + 4  # each window answered once, 4 refusals
