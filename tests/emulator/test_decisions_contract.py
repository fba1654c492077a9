"""Contract tests: the emulator's Audio Decisions API holds Hume's documented rules (AUDIO-DECISIONS-FACTS.md;
each test names its source page: R/ = dev.hume.ai/audio-decisions/reference/, D/ = .../docs/, C/ = .../changelog),
and its answers follow the audio as app/emulator/decisions_audio.py describes.

Driven over the emulator's real cloud socket with raw httpx and multipart bodies built byte by byte, so that part
order and exact sizes are what the test says. Media are real files encoded by PyAV (decisions_media.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from app.emulator.cli import build_parser, config_from_args
from app.emulator.testing import EmulatorServer
from app.hume import decisions_contract as hume

from .decisions_media import CONTENT_TYPE, file_part, mp3, multipart, request_part, wav
from .media import encoded_audio

KEY = "decisions-key"
DECIDE = hume.DECISIONS_PATH
TOKENS = hume.INPUT_TOKENS_PATH
RUNS = hume.RUNS_PATH
NOUL = {"type": "noul", "instructions": "Does anyone speak?"}
ALL_FOUR: dict[str, Any] = {
    "speaks": NOUL,
    "pitch": {"type": "choice", "instructions": "How high is the voice?",
              "criteria": {"low": "A low voice", "middle": "In between", "high": "A high voice"}},
    "clarity": {"type": "score", "instructions": "How clear is the audio?",
                "criteria": ["Unintelligible", "Poor", "Fair", "Good", "Excellent"]},
    "sound": {"type": "span", "instructions": "When is there sound?"},
}  # fmt: skip
THREE_S = wav(3)


@pytest.fixture
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.cloud_url, headers={hume.API_KEY_HEADER: KEY}, timeout=60) as client:
        yield client


def ask(http: httpx.Client, audio: bytes, questions: dict[str, Any] | None = None, **extra: Any) -> httpx.Response:
    asked = {"speaks": NOUL} if questions is None else questions
    body = multipart(request_part(asked, extra.get("context")), file_part(audio))
    return http.post(DECIDE, content=body, headers={"content-type": CONTENT_TYPE})


def refused(response: httpx.Response, status: int, code: str, param: str | None) -> dict[str, Any]:
    """The service's error shape (D/errors.md): type, code, message, param (absent for the whole request) and
    request_id like `req_01JB8XA3C5RD`."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "error" and body["code"] == code, body
    assert body.get("param") == param, body
    assert body["request_id"].startswith("req_") and body["message"]
    return body


# --- Gateway and account (D/authentication, D/errors, openapi) -------------------------------------------


def test_no_key_is_the_gateways_401_without_type_code_or_request_id(emu: EmulatorServer) -> None:
    """D/authentication: X-Hume-Api-Key on every request; D/errors: gateway bodies have message only, and
    request_id only when a key was sent."""
    for method, path in (("POST", DECIDE), ("POST", TOKENS), ("GET", RUNS)):
        response = httpx.request(method, emu.cloud_url + path)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}


def test_a_refused_key_gets_a_request_id_and_a_bearer_token_is_no_key(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(api_key="the-key")
    refused_key = httpx.get(emu.cloud_url + RUNS, headers={hume.API_KEY_HEADER: "wrong"})
    assert refused_key.status_code == 401
    body = refused_key.json()
    assert set(body) == {"message", "request_id"} and body["message"] == "Unauthorized"
    bearer = httpx.get(emu.cloud_url + RUNS, headers={"authorization": "Bearer the-key"})
    assert bearer.status_code == 401 and bearer.json() == {"message": "Unauthorized"}
    assert httpx.get(emu.cloud_url + RUNS, headers={hume.API_KEY_HEADER: "the-key"}).status_code == 200


def test_600_requests_a_minute_across_every_endpoint_then_the_gateways_429(make_emulator: Callable[..., Any]) -> None:
    """C/2026/11/6: a sliding 60 s window per organization counting every Audio Decisions endpoint; the 429 body
    is `{"message": "API rate limit exceeded"}` (D/errors). The emulator's limit is set low to reach it."""
    emu = make_emulator(requests_per_minute=3)
    headers = {hume.API_KEY_HEADER: KEY}
    estimate = {"audio_duration_ms": 5000, "questions": {"speaks": NOUL}}
    assert httpx.post(emu.cloud_url + TOKENS, json=estimate, headers=headers).status_code == 200
    assert httpx.get(emu.cloud_url + RUNS, headers=headers).status_code == 200
    body = multipart(request_part({"speaks": NOUL}), file_part(THREE_S))
    headers_mp = {**headers, "content-type": CONTENT_TYPE}
    assert httpx.post(emu.cloud_url + DECIDE, content=body, headers=headers_mp).status_code == 200
    limited = httpx.post(emu.cloud_url + DECIDE, content=body, headers=headers_mp)
    assert limited.status_code == 429
    assert limited.json() == {"message": "API rate limit exceeded"}
    assert int(limited.headers["retry-after"]) >= 1
    other = {hume.API_KEY_HEADER: "another-organization"}
    assert httpx.get(emu.cloud_url + RUNS, headers=other).status_code == 200


def test_no_payment_method_is_402_on_the_billed_endpoint(make_emulator: Callable[..., Any]) -> None:
    """openapi/audio-decisions-api.json: 402 = no payment method on file or an unpaid invoice. The free
    endpoints (D/billing) still answer (ASSUMED)."""
    emu = make_emulator(no_payment_method_keys=frozenset({KEY}))
    with httpx.Client(base_url=emu.cloud_url, headers={hume.API_KEY_HEADER: KEY}) as client:
        refused(ask(client, THREE_S), 402, "payment_required", None)
        assert client.post(TOKENS, json={"audio_duration_ms": 3000, "questions": {"q": NOUL}}).status_code == 200


def test_an_organization_without_access_is_403(make_emulator: Callable[..., Any]) -> None:
    """home/authentication: 403 when the organization lacks access or the key's permissions exclude the API."""
    emu = make_emulator(decisions_not_enabled_keys=frozenset({KEY}))
    with httpx.Client(base_url=emu.cloud_url, headers={hume.API_KEY_HEADER: KEY}) as client:
        refused(ask(client, THREE_S), 403, "forbidden", None)
        refused(client.get(RUNS), 403, "forbidden", None)


def test_the_cli_marks_keys_without_payment_or_access() -> None:
    args = build_parser().parse_args(
        ["--no-payment-method-key", "k1", "--decisions-not-enabled-key", "k2", "--decisions-run-delay", "1.5"]
    )
    config = config_from_args(args)
    assert config.no_payment_method_keys == {"k1"} and config.decisions_not_enabled_keys == {"k2"}
    assert config.decisions_run_delay_s == 1.5


def test_the_api_lives_on_the_cloud_host_only(emu: EmulatorServer) -> None:
    """R/decisions/create.md: https://api.cloud.hume.ai; the voice-era host does not serve it."""
    assert httpx.get(emu.base_url + RUNS, headers={hume.API_KEY_HEADER: KEY}).status_code == 404


# --- The multipart body (R/decisions/create.md, D/limits-and-errors) ---------------------------------------


def test_request_part_first_then_one_file(http: httpx.Client) -> None:
    """ "Two parts, sent in this order": request, then file; one file per request, else message_invalid."""
    mp = {"content-type": CONTENT_TYPE}
    request = request_part({"speaks": NOUL})
    assert http.post(DECIDE, content=multipart(request, file_part(THREE_S)), headers=mp).status_code == 200
    refused(http.post(DECIDE, content=multipart(file_part(THREE_S), request), headers=mp), 400, "message_invalid",
            "request")  # fmt: skip
    two = multipart(request, file_part(THREE_S), file_part(THREE_S, "b.wav"))
    refused(http.post(DECIDE, content=two, headers=mp), 400, "message_invalid", "file")
    refused(http.post(DECIDE, content=multipart(request), headers=mp), 400, "message_invalid", "file")
    refused(http.post(DECIDE, content=orjson.dumps({"questions": {}}), headers={"content-type": "application/json"}),
            400, "message_invalid", None)  # fmt: skip


def test_25_000_000_bytes_for_request_and_file_together(http: httpx.Client) -> None:
    """D/limits-and-errors: 25,000,000 bytes, the request and file parts together → payload_too_large. A body of
    exactly the limit passes the size check."""
    request = request_part({"speaks": NOUL})
    overhead = len(multipart(request, file_part(b"")))
    audio = wav(1) + bytes(hume.MAX_REQUEST_BYTES - overhead - len(wav(1)))
    at_limit = multipart(request, file_part(audio))
    assert len(at_limit) == hume.MAX_REQUEST_BYTES
    mp = {"content-type": CONTENT_TYPE}
    answered = http.post(DECIDE, content=at_limit, headers=mp).json()
    assert answered.get("code") != "payload_too_large", answered
    over = multipart(request, file_part(audio + b"\0"))
    refused(http.post(DECIDE, content=over, headers=mp), 413, "payload_too_large", None)


def test_mp3_or_wav_by_content_not_by_name(http: httpx.Client) -> None:
    """D/limits-and-errors: MP3 or WAV only, else audio_format_unsupported; WAV with PCM or floating-point
    samples (cookbooks/evaluating-many-recordings); any rate and channel count (pypi hume-audio-decisions)."""
    for audio in (mp3(2), wav(2, codec="pcm_f32le"), wav(2, codec="pcm_u8"), wav(2, rate=44_100, channels=2)):
        assert ask(http, audio).status_code == 200
    flac, aac = encoded_audio("flac", "flac", 2.0), encoded_audio("mp4", "aac", 2.0)
    for other in (flac, aac, b"not audio at all", b""):
        refused(ask(http, other), 415, "audio_format_unsupported", "file")


def test_from_1_second_to_5_minutes(http: httpx.Client) -> None:
    """C/2026/11/7: audio from 1 s (was 5 s), audio_too_short below; D/limits-and-errors: at most 5 minutes,
    audio_too_long above."""
    refused(ask(http, wav(0.99)), 400, "audio_too_short", "file")
    assert ask(http, wav(1.0)).status_code == 200
    assert ask(http, wav(300, rate=8000)).status_code == 200
    refused(ask(http, wav(300.1, rate=8000)), 400, "audio_too_long", "file")


# --- The request part (R/ reference index, R/decisions/create.md, D/primitives, D/errors.md) -------------


def test_the_documented_question_invalid_example(http: httpx.Client) -> None:
    """D/errors.md's example: a one-level score is 400 question_invalid "score criteria must define at least 2
    levels" at /questions/clarity/criteria."""
    body = refused(ask(http, THREE_S, {"clarity": {"type": "score", "instructions": "How clear?", "criteria": ["x"]}}),
                   400, "question_invalid", "/questions/clarity/criteria")  # fmt: skip
    assert body["message"] == "score criteria must define at least 2 levels"


@pytest.mark.parametrize(
    ("question", "param"),
    [
        ({"type": "choice", "instructions": "Which?", "criteria": {"only": "One option"}}, "/questions/q/criteria"),
        ({"type": "choice", "instructions": "Which?"}, "/questions/q"),
        ({"type": "score", "instructions": "How?", "criteria": "not a list"}, "/questions/q/criteria"),
        ({"type": "rating", "instructions": "How?"}, "/questions/q/type"),
        ({"instructions": "How?"}, "/questions/q"),
        ({"type": "noul"}, "/questions/q"),
        ({"type": "noul", "instructions": "  "}, "/questions/q/instructions"),
        ({"type": "noul", "instructions": "Yes?", "extra": 1}, "/questions/q"),
        ({"type": "noul", "instructions": "Yes?", "criteria": {"maybe": "?"}}, "/questions/q/criteria/maybe"),
        ({"type": "span", "instructions": "When?", "criteria": ["a"]}, "/questions/q/criteria"),
    ],
)
def test_each_question_rule_names_its_pointer(http: httpx.Client, question: dict[str, Any], param: str) -> None:
    """D/primitives: choice needs two or more options, score two or more levels; a value rule names the field,
    a missing or unknown field the question that should (not) hold it (D/errors.md)."""
    refused(ask(http, THREE_S, {"q": question}), 400, "question_invalid", param)


def test_optional_criteria_of_noul_and_span(http: httpx.Client) -> None:
    """D/primitives: a noul question may say what counts as yes or no; span criteria are optional."""
    questions = {
        "a": NOUL,
        "b": {"type": "noul", "instructions": "Yes?", "criteria": {"true": "Someone speaks", "false": "Silence"}},
        "c": {"type": "span", "instructions": "When?"},
        "d": {"type": "span", "instructions": "When?", "criteria": "A phone rings"},
    }
    assert ask(http, THREE_S, questions).status_code == 200


def test_question_ids_of_1_to_256_characters(http: httpx.Client) -> None:
    """R/decisions/input-tokens: "any non-empty string of up to 256 characters"; a pointer escapes / and ~."""
    assert ask(http, THREE_S, {"x" * 256: NOUL, "a/b~c": NOUL}).json()["answers"].keys() == {"x" * 256, "a/b~c"}
    refused(ask(http, THREE_S, {"x" * 257: NOUL}), 400, "question_invalid", "/questions/" + "x" * 257)
    refused(ask(http, THREE_S, {"": NOUL}), 400, "question_invalid", "/questions/")
    bad = {"a/b~c": {"type": "score", "instructions": "How?", "criteria": ["one"]}}
    refused(ask(http, THREE_S, bad), 400, "question_invalid", "/questions/a~1b~0c/criteria")


def test_20_rated_and_5_span_questions(http: httpx.Client) -> None:
    """R/ (reference index): at most 20 noul, choice and score together, and at most 5 span."""
    rated = {f"r{i}": NOUL for i in range(20)}
    spans = {f"s{i}": {"type": "span", "instructions": "When?"} for i in range(5)}
    assert ask(http, THREE_S, {**rated, **spans}).status_code == 200
    refused(ask(http, THREE_S, {**rated, "r20": NOUL}), 400, "question_invalid", "/questions")
    refused(ask(http, THREE_S, {**spans, "s5": {"type": "span", "instructions": "When?"}}), 400,
            "question_invalid", "/questions")  # fmt: skip
    refused(ask(http, THREE_S, {}), 400, "question_invalid", "/questions")


def test_context_of_at_most_1000_characters(http: httpx.Client) -> None:
    """R/decisions/create.md: context ≤ 1000 characters (its error code is undocumented: message_invalid)."""
    assert ask(http, THREE_S, context="c" * 1000).status_code == 200
    refused(ask(http, THREE_S, context="c" * 1001), 400, "message_invalid", "/context")


# --- Input tokens (R/decisions/input-tokens.md, C/2026/11/7, D/billing) ----------------------------------


def test_input_tokens_takes_1000_to_300000_ms_and_the_same_questions(http: httpx.Client) -> None:
    def estimate(duration: Any, questions: dict[str, Any] | None = None) -> httpx.Response:
        return http.post(TOKENS, json={"audio_duration_ms": duration, "questions": questions or {"q": NOUL}})

    assert estimate(1000).status_code == 200 and estimate(300_000).status_code == 200
    refused(estimate(999), 400, "audio_too_short", "/audio_duration_ms")
    refused(estimate(300_001), 400, "audio_too_long", "/audio_duration_ms")
    refused(estimate("5000"), 400, "message_invalid", "/audio_duration_ms")
    refused(estimate(5000, {"q": {"type": "score", "instructions": "?", "criteria": []}}), 400, "question_invalid",
            "/questions/q/criteria")  # fmt: skip


def test_tokens_count_duration_not_rate_channels_or_format(http: httpx.Client) -> None:
    """D/billing: tokens come from the audio's duration only, and each request's received.input_tokens is what
    the free estimate says for the same duration and questions."""
    estimate = http.post(TOKENS, json={"audio_duration_ms": 3000, "questions": ALL_FOUR}).json()["input_tokens"]
    for audio in (THREE_S, wav(3, rate=44_100, channels=2), wav(3, codec="pcm_f32le")):
        assert ask(http, audio, ALL_FOUR).json()["received"]["input_tokens"] == estimate
    longer = http.post(TOKENS, json={"audio_duration_ms": 6000, "questions": ALL_FOUR}).json()["input_tokens"]
    more_text = http.post(TOKENS, json={"audio_duration_ms": 3000, "questions": ALL_FOUR, "context": "x" * 400})
    assert longer > estimate and more_text.json()["input_tokens"] > estimate


# --- Answers (decisions_audio.py; D/primitives; C/2026/12/1) ---------------------------------------------


def answers(http: httpx.Client, audio: bytes, questions: dict[str, Any] = ALL_FOUR) -> dict[str, Any]:
    response = ask(http, audio, questions)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"run_id", "answers", "received"}
    return dict(body["answers"])


def test_noul_share_rises_with_loudness(http: httpx.Client) -> None:
    shares = [answers(http, wav(3, amplitude=a))["speaks"]["noul"] for a in (0.01, 0.05, 0.3, 0.9)]
    assert shares == sorted(shares) and shares[0] < 0.5 < shares[-1]
    assert all(0 <= s <= 1 for s in shares)


def test_score_mean_rises_with_pitch_and_choice_follows_it(http: httpx.Client) -> None:
    """D/primitives: `score` is the mean level of the level probabilities; `choice` the option with the largest
    share, the shares summing to 1; `legend` maps each level to its description."""
    read = [answers(http, wav(3, hz=hz)) for hz in (100, 220, 440, 900)]
    means = [r["clarity"]["score"] for r in read]
    assert means == sorted(means) and means[0] < 1 and means[-1] > 3
    for r in read:
        score, choice = r["clarity"], r["pitch"]
        levels = score["probabilities"]
        assert abs(sum(levels.values()) - 1) < 1e-4
        assert abs(sum(int(i) * p for i, p in levels.items()) - score["score"]) < 1e-3
        assert score["legend"] == {str(i): t for i, t in enumerate(ALL_FOUR["clarity"]["criteria"])}
        options = choice["probabilities"]
        assert list(options) == ["low", "middle", "high"] and abs(sum(options.values()) - 1) < 1e-4
        assert choice["choice"] == max(options, key=options.__getitem__)
        assert 0 <= choice["confidence"] <= 1 and 0 <= score["confidence"] <= 1
    assert [r["pitch"]["choice"] for r in (read[0], read[-1])] == ["low", "high"]


def test_spans_are_the_sounding_stretches_sorted_with_probability_at_least_half(http: httpx.Client) -> None:
    """C/2026/12/1: only spans with probability ≥ 0.5, sorted by audio_start_ms, times in ms from the start of
    the file sent; a quiet stretch falls under 0.5 and is left out."""
    audio = wav(6, gaps=[(1.5, 2.5), (4.0, 6.0)])
    spans = answers(http, audio)["sound"]["spans"]
    assert [(s["audio_start_ms"], s["audio_end_ms"]) for s in spans] == [(0, 1500), (2500, 4000)]
    assert all(s["probability"] >= 0.5 for s in spans)
    assert answers(http, wav(3, gaps=[(0, 3)]))["sound"]["spans"] == []
    assert answers(http, wav(3, amplitude=0.02))["sound"]["spans"] == []  # sounding, but at -37 dBFS


def test_the_same_request_gets_the_same_answers_and_the_order_of_questions_matters(http: httpx.Client) -> None:
    """D/writing-questions: one inference answers all questions, so "an answer can change when other questions
    are added, removed or reordered"; the emulator answers the same request the same way."""
    first = answers(http, THREE_S)
    assert answers(http, THREE_S) == first
    reordered = answers(http, THREE_S, dict(reversed(list(ALL_FOUR.items()))))
    assert reordered != first and set(reordered) == set(first)


# --- Runs (R/runs/list.md, R/runs/get.md, D/runs) --------------------------------------------------------


def test_a_run_appears_after_a_delay_without_answers(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(decisions_run_delay_s=0.5)
    with httpx.Client(base_url=emu.cloud_url, headers={hume.API_KEY_HEADER: KEY}) as client:
        run_id = ask(client, THREE_S, ALL_FOUR).json()["run_id"]
        assert client.get(f"{RUNS}/{run_id}").status_code == 404
        assert client.get(RUNS).json()["runs"] == []
        time.sleep(0.6)
        run = client.get(f"{RUNS}/{run_id}").json()
        assert set(run) == {"run_id", "user_id", "status", "started_at", "ended_at", "received", "request"}
        assert run["status"] == "ended" and run["request"] == {"questions": ALL_FOUR}
        assert run["received"]["input_tokens"] > 0
        assert [r["run_id"] for r in client.get(RUNS).json()["runs"]] == [run_id]
        other = {hume.API_KEY_HEADER: "another-organization"}
        assert client.get(f"{RUNS}/{run_id}", headers=other).status_code == 404  # runs are per organization
        assert client.get(f"{RUNS}/not-a-uuid").status_code == 404


def test_refused_requests_make_no_run(make_emulator: Callable[..., Any]) -> None:
    """D/runs: only requests that reach the model get runs; 4xx are not billed (D/billing)."""
    emu = make_emulator(decisions_run_delay_s=0)
    with httpx.Client(base_url=emu.cloud_url, headers={hume.API_KEY_HEADER: KEY}) as client:
        ask(client, wav(0.5))
        ask(client, THREE_S, {"q": {"type": "score", "instructions": "?", "criteria": ["one"]}})
        assert client.get(RUNS).json()["runs"] == []


def test_list_pages_newest_first_with_filters(make_emulator: Callable[..., Any]) -> None:
    """R/runs/list.md: page_size 1-200 (default 50), next_cursor passed back unchanged, status ended|errored,
    started_after inclusive and started_before exclusive."""
    emu = make_emulator(decisions_run_delay_s=0)
    with httpx.Client(base_url=emu.cloud_url, headers={hume.API_KEY_HEADER: KEY}) as client:
        made = [ask(client, wav(1)).json()["run_id"] for _ in range(5)]
        page = client.get(RUNS, params={"page_size": 2}).json()
        assert [r["run_id"] for r in page["runs"]] == made[::-1][:2]
        seen = [r["run_id"] for r in page["runs"]]
        while "next_cursor" in page:
            page = client.get(RUNS, params={"page_size": 2, "cursor": page["next_cursor"]}).json()
            seen += [r["run_id"] for r in page["runs"]]
        assert seen == made[::-1]
        runs = client.get(RUNS).json()["runs"]
        oldest = runs[-1]["started_at"]
        assert {r["run_id"] for r in client.get(RUNS, params={"started_after": oldest}).json()["runs"]} == set(made)
        assert client.get(RUNS, params={"started_before": oldest}).json()["runs"] == []
        assert client.get(RUNS, params={"status": "errored"}).json()["runs"] == []
        for bad in ({"page_size": 0}, {"page_size": 201}, {"status": "done"}, {"started_after": "yesterday"},
                    {"cursor": "nonsense"}):  # fmt: skip
            assert client.get(RUNS, params=bad).status_code == 400, bad


def test_injected_faults_have_the_gateway_or_service_shape(emu: EmulatorServer, http: httpx.Client) -> None:
    emu.set_faults(path=DECIDE, status=429, times=1, retry_after=2)
    emu.set_faults(path=DECIDE, status=503, times=1)
    limited = ask(http, THREE_S)
    assert limited.status_code == 429 and limited.json() == {"message": "API rate limit exceeded"}
    assert limited.headers["retry-after"] == "2"
    refused(ask(http, THREE_S), 503, "server_busy", None)
    assert ask(http, THREE_S).status_code == 200
