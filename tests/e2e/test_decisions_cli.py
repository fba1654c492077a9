"""`python -m app hume check --decisions` and `python -m app decisions ask` as an operator runs them, against the
test emulator's cloud host: Hume's raw answers next to what we read, and the answers to a question set about a
recording fetched by URL; against Hume's own host the check sends nothing without --spend."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.commands import hume_commands
from app.commands.errors import CommandError
from app.config import HUME_CLOUD_URL, Settings
from app.core.metrics import HUME_REQUEST_SECONDS
from app.emulator.testing import EmulatorServer
from app.hume import decisions_contract as hume
from tests.conftest import hume_environment

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "/_emulator/media/talk.mp4"  # 12 s, sound at 0.5-3.0, 4.0-6.5 and 7.5-11.0 s (app/emulator/sample_media.py)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HUME_", "ALLOW_PRIVATE"))}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, env={**clean, "LOG_LEVEL": "WARNING", **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_check_prints_humes_raw_answer_next_to_what_we_read(emulator: EmulatorServer) -> None:
    result = run(hume_environment(emulator), "hume", "check", "--decisions")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"host            {emulator.cloud_url}" in out and "authentication  ok" in out
    assert "estimate        " in out and 'Hume sent {"input_tokens":' in out
    for qid, kind in (("tone_present", "noul"), ("pitch", "choice"), ("loudness", "score"), ("tone_times", "span")):
        assert f"  {qid} ({kind})\n    Hume sent     {{" in out
    assert 'we read       {"share":' in out and '"spans":[{"start_ms":0,"end_ms":2000' in out
    assert out.count("unread        none") == 4 and "result          ok" in out
    assert emulator.calls() == {f"POST {hume.INPUT_TOKENS_PATH}": 1, f"POST {hume.DECISIONS_PATH}": 1}


def test_an_answer_in_other_spellings_names_what_was_not_read(emulator: EmulatorServer) -> None:
    """The first user with a key sees at once which assumption was wrong: the field Hume sent that we do not
    know, and the value we could not read from it."""
    body = {
        "run_id": "11111111-2222-3333-4444-555555555555",
        "answers": {
            "tone_present": {"yes_share": 0.8},
            "pitch": {"choice": "high", "probabilities": {"low": 0.3, "high": 0.7}, "confidence": 0.4},
            "loudness": {"score": 2.1, "probabilities": [0.1, 0.1, 0.4, 0.4], "legend": ["a", "b", "c", "d"]},
            "tone_times": {"spans": []},
        },
        "received": {"input_tokens": 180, "file_bytes": 160044},
    }
    emulator.set_faults(path=hume.DECISIONS_PATH, status=200, body=body)
    result = run(hume_environment(emulator), "hume", "check", "--decisions")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "unknown fields  received.file_bytes (outside the answers)" in out
    assert "  tone_present (noul)\n" in out and "unknown       yes_share\n    unread        share" in out
    assert "FAILED: some answers could not be read" in out


def test_an_organization_without_a_payment_method_is_told_apart(emulator: EmulatorServer) -> None:
    emulator.set_faults(path=hume.DECISIONS_PATH, status=402, body={"type": "error", "code": "payment_required",
                        "message": "No payment method", "request_id": "req_1"})  # fmt: skip
    result = run(hume_environment(emulator), "hume", "check", "--decisions")
    assert result.returncode == 1
    assert "authentication  402: the organization has no payment method on file" in result.stdout


def test_against_hume_itself_nothing_is_sent_without_spend() -> None:
    result = run({"HUME_API_KEY": "a-real-looking-key"}, "hume", "check", "--decisions")
    assert result.returncode == 2
    assert f"host            {HUME_CLOUD_URL}" in result.stdout and "--spend" in result.stdout
    assert result.stderr.startswith("error: Audio Decisions was not checked")

    def sent() -> float:
        return sum(
            sample.value
            for metric in HUME_REQUEST_SECONDS.collect()
            for sample in metric.samples
            if sample.name.endswith("_count") and sample.labels["operation"] == "decisions"
        )

    before = sent()
    with pytest.raises(CommandError, match="--spend"):
        hume_commands.cmd_hume(argparse.Namespace(spend=False, decisions=True), Settings(hume_api_key="a-real-key"))
    assert sent() == before


def write(tmp_path: Path, content: Any) -> str:
    path = tmp_path / "questions.json"
    path.write_bytes(orjson.dumps(content))
    return str(path)


QUESTION_SET = {
    "name": "calls",
    "context": "A recorded test tone",
    "questions": {
        "speaks": {"type": "noul", "instructions": "Does anyone speak?"},
        "clarity": {"type": "score", "instructions": "How clear?", "criteria": ["Poor", "Fair", "Good"]},
        "bursts": {"type": "span", "instructions": "When is there sound?"},
    },
}


def ask_env(emulator: EmulatorServer) -> dict[str, str]:
    return {**hume_environment(emulator), "ALLOW_PRIVATE_HOSTS": "127.0.0.1"}


def test_ask_prints_each_answer_of_a_recording_fetched_by_url(emulator: EmulatorServer, tmp_path: Path) -> None:
    url = emulator.base_url + SAMPLE
    result = run(ask_env(emulator), "decisions", "ask", "--questions", write(tmp_path, QUESTION_SET), "--url", url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["question", "type", "answer"]
    assert lines[1].startswith("speaks    noul    yes 0.")
    assert lines[2].startswith("clarity   score   ") and "on 0-2" in lines[2]
    assert lines[3].startswith("bursts    span    0.50-3.00 s (") and "4.00-6.50 s" in lines[3]
    assert "input tokens, audio 0.0-12.0 s of the recording" in result.stdout

    as_json = run(ask_env(emulator), "decisions", "ask", "--questions", write(tmp_path, QUESTION_SET), "--url", url,
                  "--json")  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    body = orjson.loads(as_json.stdout)
    assert body["audio"]["start_ms"] == 0 and 12_000 <= body["audio"]["end_ms"] < 12_100  # AAC's padding
    assert body["input_tokens"] > 0
    spans = body["answers"]["bursts"]["spans"]
    assert [(s["start_ms"], s["end_ms"]) for s in spans] == [(500, 3000), (4000, 6500), (7500, 11000)]
    assert body["answers"]["speaks"]["raw"] == {"type": "noul", "noul": body["answers"]["speaks"]["share"]}


def test_ask_refuses_a_question_set_hume_would_refuse_naming_the_pointer(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    bad = {"clarity": {"type": "score", "instructions": "How clear?", "criteria": ["Only one"]}}
    result = run(ask_env(emulator), "decisions", "ask", "--questions", write(tmp_path, bad), "--url", "http://x/a.wav")
    assert result.returncode == 2
    assert "/questions/clarity/criteria: score criteria must define at least 2 levels" in result.stderr
    assert emulator.calls() == {}


def test_ask_names_a_url_it_may_not_fetch(emulator: EmulatorServer, tmp_path: Path) -> None:
    """The egress guard holds: without ALLOW_PRIVATE_HOSTS a private address is refused before any request."""
    env = {**hume_environment(emulator), "ALLOW_PRIVATE_HOSTS": ""}
    url = emulator.base_url + SAMPLE
    result = run(env, "decisions", "ask", "--questions", write(tmp_path, QUESTION_SET), "--url", url)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {url}: ") and emulator.calls() == {}
