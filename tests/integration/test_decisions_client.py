"""The Audio Decisions client (app/hume/decisions.py) against the emulator over its real cloud socket: answers
read into typed fields with Hume's raw answer kept, every error as one DecisionsError with what Hume said, busy
answers retried (honouring Retry-After) through the shared request budget, and unknown fields logged once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.emulator.testing import EmulatorServer
from app.hume import decisions
from app.hume import decisions_contract as hume
from app.hume.decisions import DecisionsClient, DecisionsError
from app.store import request_budget
from tests.conftest import EMULATOR_KEY
from tests.emulator.decisions_media import wav

QUESTIONS: dict[str, Any] = {
    "speaks": {"type": "noul", "instructions": "Does anyone speak?"},
    "pitch": {"type": "choice", "instructions": "How high?", "criteria": {"low": "Low", "high": "High"}},
    "clarity": {"type": "score", "instructions": "How clear?", "criteria": ["Poor", "Fair", "Good"]},
    "sound": {"type": "span", "instructions": "When is there sound?"},
}
AUDIO = wav(4, gaps=[(1.0, 2.0)])


class Sleeps:
    """Records the waits the client asks for instead of waiting them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def client(emulator: EmulatorServer) -> AsyncIterator[tuple[DecisionsClient, Sleeps]]:
    sleeps = Sleeps()
    client = DecisionsClient(api_key=EMULATOR_KEY, base_url=emulator.cloud_url, sleep=sleeps)
    yield client, sleeps
    await client.aclose()


async def test_answers_are_read_into_typed_fields_with_the_raw_answer_kept(
    client: tuple[DecisionsClient, Sleeps], emulator: EmulatorServer
) -> None:
    decide, _ = client
    result = await decide.decide(AUDIO, "call.wav", "audio/wav", QUESTIONS, "A support call")
    assert result.run_id is not None and result.attempts == 1
    estimate = await decide.input_tokens(4000, QUESTIONS, "A support call")
    assert result.input_tokens == estimate > 0
    noul, choice, score, span = (result.answers[q] for q in QUESTIONS)
    assert noul.primitive == "noul" and noul.share is not None and 0.5 < noul.share <= 1
    assert choice.choice in ("low", "high") and choice.probabilities is not None
    assert choice.choice == max(choice.probabilities, key=choice.probabilities.__getitem__)
    assert score.score is not None and score.legend == {"0": "Poor", "1": "Fair", "2": "Good"}
    assert score.probabilities is not None and set(score.probabilities) == {"0", "1", "2"}
    assert span.spans is not None and [(s.start_ms, s.end_ms) for s in span.spans] == [(0, 1000), (2000, 4000)]
    assert all(a.raw == result.raw["answers"][qid] for qid, a in result.answers.items())
    assert result.unknown_fields == ()
    # The multipart body went out as Hume documents it: the request part first, then the file.
    assert emulator.calls() == {f"POST {hume.DECISIONS_PATH}": 1, f"POST {hume.INPUT_TOKENS_PATH}": 1}


async def test_refusals_carry_status_code_param_and_request_id(client: tuple[DecisionsClient, Sleeps]) -> None:
    decide, sleeps = client
    bad = {"clarity": {"type": "score", "instructions": "How clear?", "criteria": ["Only one"]}}
    with pytest.raises(DecisionsError) as refused:
        await decide.decide(AUDIO, "a.wav", "audio/wav", bad)
    error = refused.value
    assert (error.status, error.code, error.param) == (400, "question_invalid", "/questions/clarity/criteria")
    assert error.hume_message == "score criteria must define at least 2 levels"
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert not error.retryable and not error.media and not error.account and sleeps.waits == []
    with pytest.raises(DecisionsError) as short:
        await decide.decide(wav(0.5), "a.wav", "audio/wav", QUESTIONS)
    assert short.value.code == "audio_too_short" and short.value.media and short.value.error_code == "audio_too_short"


async def test_account_errors_are_not_retried(emulator: EmulatorServer) -> None:
    """401 (a wrong key: the gateway's body, no code) and 402/403 (injected) fail at once."""
    sleeps = Sleeps()
    wrong = DecisionsClient(api_key="not-the-key", base_url=emulator.cloud_url, sleep=sleeps)
    try:
        with pytest.raises(DecisionsError) as unauthorized:
            await wrong.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
    finally:
        await wrong.aclose()
    assert (unauthorized.value.status, unauthorized.value.code) == (401, None)
    assert unauthorized.value.account and unauthorized.value.error_code == "hume_unauthorized"
    right = DecisionsClient(api_key=EMULATOR_KEY, base_url=emulator.cloud_url, sleep=sleeps)
    try:
        for status, code in ((402, "hume_payment_required"), (403, "hume_forbidden")):
            emulator.set_faults(path=hume.DECISIONS_PATH, status=status, times=1)
            with pytest.raises(DecisionsError) as refused:
                await right.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
            assert refused.value.status == status and refused.value.error_code == code
    finally:
        await right.aclose()
    assert sleeps.waits == []
    assert emulator.calls()[f"POST {hume.DECISIONS_PATH}"] == 3


async def test_429_is_retried_after_retry_after_and_busy_with_backoff(
    client: tuple[DecisionsClient, Sleeps], emulator: EmulatorServer
) -> None:
    decide, sleeps = client
    emulator.set_faults(path=hume.DECISIONS_PATH, status=429, times=2, retry_after=3)
    result = await decide.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
    assert result.attempts == 3 and sleeps.waits == [3.0, 3.0] and result.answers["speaks"].share is not None
    sleeps.waits.clear()
    emulator.set_faults(path=hume.DECISIONS_PATH, status=503, times=2)
    assert (await decide.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)).attempts == 3
    assert sleeps.waits == [decisions.BACKOFF_S, 2 * decisions.BACKOFF_S]


async def test_it_gives_up_after_its_retries_with_a_retryable_error(
    client: tuple[DecisionsClient, Sleeps], emulator: EmulatorServer
) -> None:
    decide, sleeps = client
    emulator.set_faults(path=hume.DECISIONS_PATH, status=503)
    with pytest.raises(DecisionsError) as busy:
        await decide.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
    assert busy.value.retryable and busy.value.status == 503 and busy.value.code == hume.BUSY_CODE
    assert len(sleeps.waits) == decisions.DEFAULT_MAX_RETRIES
    assert emulator.calls()[f"POST {hume.DECISIONS_PATH}"] == decisions.DEFAULT_MAX_RETRIES + 1


async def test_no_answer_at_all_is_retryable() -> None:
    sleeps = Sleeps()
    closed = DecisionsClient(api_key=EMULATOR_KEY, base_url="http://127.0.0.1:9", sleep=sleeps, max_retries=1)
    try:
        with pytest.raises(DecisionsError) as unreachable:
            await closed.input_tokens(5000, QUESTIONS)
    finally:
        await closed.aclose()
    assert unreachable.value.retryable and unreachable.value.status is None and len(sleeps.waits) == 1


async def test_every_attempt_spends_the_shared_request_budget(
    emulator: EmulatorServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Retries count against the organization's 600 a minute (C/2026/11/6) like any request: each attempt
    reserves a slot of the Postgres budget the v1 client uses (app/store/request_budget.py)."""
    budget = request_budget.Budget("test:decisions", per_minute=6, burst=4)  # 30 s apart after the burst
    reserved: list[float] = []

    async def pace() -> float:
        wait = await request_budget.reserve(sessionmaker, budget)
        reserved.append(wait)
        return wait

    emulator.set_faults(path=hume.DECISIONS_PATH, status=429, times=2, retry_after=0)
    client = DecisionsClient(api_key=EMULATOR_KEY, base_url=emulator.cloud_url, pace=pace, sleep=Sleeps())
    try:
        await client.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
        await client.list_runs()
    finally:
        await client.aclose()
    assert reserved == [0.0] * 4  # three attempts and the list: the whole burst of 4
    assert await request_budget.reserve(sessionmaker, budget) > 0  # so the next request waits its turn


async def test_unknown_fields_and_other_spellings_are_read_and_logged_once(
    client: tuple[DecisionsClient, Sleeps], emulator: EmulatorServer
) -> None:
    """Hume's field names are partly undocumented (decisions_contract, ASSUMED): a response in other spellings
    is still read, and each field the reader does not know is logged once per process."""
    body = {
        "run_id": "11111111-2222-3333-4444-555555555555",
        "results": [
            {"question_id": "speaks", "probability": 0.7, "calibration": "v2"},
            {"question_id": "pitch", "option": "high", "probabilities": [{"option": "low", "probability": 0.2},
                                                                          {"option": "high", "probability": 0.8}]},
            {"question_id": "clarity", "mean_level": 1.5, "probabilities": [0.1, 0.3, 0.6], "calibration": "v2"},
            {"question_id": "sound", "spans": [{"start_ms": 900, "end_ms": 1800, "probability": 0.6, "label": "x"},
                                               {"start_ms": 100, "probability": 0.9}]},
        ],
        "usage": {"input_tokens": 77},
        "model": "audio-decisions-1",
    }  # fmt: skip
    emulator.set_faults(path=hume.DECISIONS_PATH, status=200, body=body, times=2)
    decisions._logged.clear()
    decide, _ = client
    with structlog.testing.capture_logs() as logs:
        first = await decide.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
        again = await decide.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
    assert first.input_tokens == 77 and first.run_id == body["run_id"]
    assert first.answers["speaks"].share == 0.7
    assert first.answers["pitch"].choice == "high" and first.answers["pitch"].probabilities == {"low": 0.2, "high": 0.8}
    assert first.answers["clarity"].score == 1.5 and first.answers["clarity"].probabilities == {
        "0": 0.1, "1": 0.3, "2": 0.6}  # fmt: skip
    assert [(s.start_ms, s.end_ms) for s in first.answers["sound"].spans or []] == [(100, None), (900, 1800)]
    expected = {"model", "answers.noul.calibration", "answers.score.calibration", "answers.span.spans[].label"}
    assert set(first.unknown_fields) == expected and set(again.unknown_fields) == expected
    logged = [entry["field"] for entry in logs if entry["event"] == "hume_decisions_unknown_field"]
    assert sorted(logged) == sorted(expected)  # once each, though both answers carried them


async def test_runs_appear_after_hume_records_them(
    client: tuple[DecisionsClient, Sleeps], emulator: EmulatorServer
) -> None:
    """D/runs: get answers 404 (None here) until the run is recorded; then list and get show it, without answers."""
    decide, _ = client
    result = await decide.decide(AUDIO, "a.wav", "audio/wav", QUESTIONS)
    assert result.run_id is not None
    assert await decide.get_run(result.run_id) is None
    await asyncio.sleep(emulator.config.decisions_run_delay_s + 0.1)
    run = await decide.get_run(result.run_id)
    assert run is not None and run.status == "ended" and run.input_tokens == result.input_tokens
    assert run.raw["request"]["questions"] == QUESTIONS and "answers" not in run.raw
    page = await decide.list_runs(page_size=1)
    assert [r.run_id for r in page.runs] == [result.run_id] and page.next_cursor is None
    assert await decide.get_run("not-a-uuid") is None
