"""`python -m app hume check` as an operator runs it: against the test emulator's two hosts it measures one
second of audio at v1 and reports host, authentication, latency and the answer's shape; against Hume's own
host it sends nothing without --spend, and says why."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.commands import hume_commands
from app.commands.errors import CommandError
from app.config import HUME_CLOUD_URL, Settings
from app.core.metrics import HUME_REQUEST_SECONDS
from app.emulator.testing import EmulatorServer
from tests.conftest import EMULATOR_KEY, hume_environment

ROOT = Path(__file__).resolve().parents[2]
AUDIO_CALL = "POST /v1/expression/audio/file"


def hume_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUME_")}
    return subprocess.run(
        [sys.executable, "-m", "app", "hume", "check", *args],
        cwd=ROOT, env={**clean, "LOG_LEVEL": "WARNING", **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def section(output: str, name: str) -> str:
    """The lines printed for one API (its heading up to the next heading)."""
    found = re.search(rf"^{re.escape(name)}: .*?(?=^\S|\Z)", output, re.M | re.S)
    assert found, f"no section {name!r} in:\n{output}"
    return found.group(0)


def test_against_the_emulator_it_measures_one_second_and_reports_each_api(emulator: EmulatorServer) -> None:
    result = hume_check(hume_environment(emulator))
    assert result.returncode == 0, result.stdout + result.stderr
    v1 = section(result.stdout, "Expression Measurement v1")
    assert f"host            {emulator.cloud_url} (HUME_CLOUD_URL)" in v1
    assert "authentication  ok" in v1
    assert re.search(r"latency         \d+ ms", v1)
    assert "unknown fields  none" in v1 and "missing fields  none" in v1 and "result          ok" in v1
    for retired in ("batch Expression Measurement (v0)", "TTS", "EVI"):
        assert "not called" in section(result.stdout, retired)
    assert "retired 2026-11-13" in section(result.stdout, "TTS")
    # One request, to the cloud host; nothing to the retired voice-era APIs.
    assert emulator.calls() == {AUDIO_CALL: 1}


def test_an_answer_of_another_shape_names_the_fields(emulator: EmulatorServer) -> None:
    """A 200 missing a field the SDK requires (and carrying one it does not know) fails the check, naming both."""
    body = {"request_id": "r-1", "run_id": "run-1", "received": {"audio_duration_ms": 1000, "frames": 3},
            "utterances": [], "measurement_list": []}  # fmt: skip
    emulator.set_faults(path="/v1/expression/audio/file", status=200, body=body)
    result = hume_check(hume_environment(emulator))
    assert result.returncode == 1, result.stdout + result.stderr
    v1 = section(result.stdout, "Expression Measurement v1")
    assert "authentication  ok" in v1
    assert "missing fields  measurements" in v1
    assert "unknown fields  measurement_list, received.frames" in v1
    assert "FAILED" in v1


def test_a_refused_key_is_401(emulator: EmulatorServer) -> None:
    """The test emulator accepts only its own key (tests/conftest.py): another one is Hume's 401."""
    result = hume_check({**hume_environment(emulator), "HUME_CLOUD_API_KEY": "not-the-key"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "authentication  401: the key was refused" in section(result.stdout, "Expression Measurement v1")


def test_an_organization_without_v1_is_403(emulator: EmulatorServer) -> None:
    """v1 is a limited release: a key whose organization is not enabled gets 403, told apart from a bad key."""
    emulator.set_faults(v1_not_enabled=[EMULATOR_KEY])
    result = hume_check(hume_environment(emulator))
    assert result.returncode == 1, result.stdout + result.stderr
    expected = "authentication  403: this organization is not enabled for v1 (limited release since 2026-10-06"
    assert expected in section(result.stdout, "Expression Measurement v1")


def test_against_hume_itself_nothing_is_sent_without_spend() -> None:
    """With a real key and no URL, v1 would reach api.cloud.hume.ai, which bills 10 s per run: the command says
    so, names --spend and exits 2, and its Hume client sends no request at all."""
    result = hume_check({"HUME_API_KEY": "a-real-looking-key"})
    assert result.returncode == 2
    v1 = section(result.stdout, "Expression Measurement v1")
    assert f"host            {HUME_CLOUD_URL} (HUME_CLOUD_URL)" in v1
    assert "not called: Hume bills at least 10 s" in v1 and "--spend" in v1
    assert result.stderr.strip().startswith("error: ") and "--spend" in result.stderr
    assert "not called: retired at Hume" in section(result.stdout, "EVI")

    # The same in this process, where the transport's own request count shows nothing went out.
    def sent() -> float:
        return sum(
            sample.value
            for metric in HUME_REQUEST_SECONDS.collect()
            for sample in metric.samples
            if sample.name.endswith("_count") and sample.labels["operation"] == "expression"
        )

    before = sent()
    with pytest.raises(CommandError, match="--spend"):
        hume_commands.cmd_hume(argparse.Namespace(spend=False), Settings(hume_api_key="a-real-looking-key"))
    assert sent() == before
