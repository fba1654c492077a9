"""Audio Decisions as an analyst meets them under `make run` (`python -m app run` in a subprocess, the built-in
emulator answering): README's "Audio Decisions" block pasted into bash (a question set, an estimate, a job over
the emulator's sample recording, its answers as JSON, CSV, distributions, top recordings and SQL), and
`python -m app trigger decisions-job` printing a generated recording's answers window by window."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess

import pytest

from tests.e2e.test_onboarding import ROOT, UUID, DevService, dev_service  # noqa: F401  # the fixture

LINE = re.compile(r"^source 0 window (\d+) (\d+):(\d\d)\.\d-(\d+):(\d\d)\.\d  (\w+) \((\w+)\): (.+)$")


def readme_block() -> str:
    section = (ROOT / "README.md").read_text().split("<!-- decisions-example -->")[1]
    return section.split("<!-- /decisions-example -->")[0].split("```sh\n")[1].split("```")[0]


@pytest.mark.slow
def test_readme_audio_decisions_block_runs_as_written(dev_service: DevService) -> None:  # noqa: F811
    emulator = f"http://127.0.0.1:{dev_service.env['EMULATOR_PORT']}"
    script = readme_block().replace("http://127.0.0.1:8001", emulator).replace("localhost:8000", dev_service.url)
    key = dev_service.cli("status", "--key").stdout.strip()
    result = subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", script], cwd=dev_service.cwd, env={**dev_service.env, "KEY": key},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    # The estimate, then the job's answers as JSON and CSV, the distributions, the top recordings, the SQL rows.
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    estimate, page, distribution, top = documents
    assert estimate["estimate"] is True and estimate["input_tokens"] > 0
    assert [len(s["windows"]) for s in estimate["sources"]] == [2]  # 12 s: 5 s, then 7 s (2 s joined)
    assert len(page["items"]) == 2 * 4 and page["next_cursor"] is None
    rows = list(csv.DictReader(io.StringIO(out[out.index("job_id,") :])))[: 2 * 4]
    assert {r["question_id"] for r in rows} == {"cancel", "natural", "mood", "ring"}
    assert {d["question_id"]: d["answers"] for d in distribution["questions"]} == dict.fromkeys(
        ("cancel", "natural", "mood", "ring"), 2
    )
    assert len(top["items"]) == 1 and top["items"][0]["job_id"] == page["job_id"]
    assert "(8 rows)" in out  # psql's footer: the view holds the job's 2 windows x 4 questions


@pytest.mark.slow
def test_trigger_decisions_job_prints_each_windows_answers(dev_service: DevService) -> None:  # noqa: F811
    result = dev_service.cli("trigger", "decisions-job", "--duration", "40", "--window-s", "15")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert UUID.fullmatch(lines[-1]) and "is completed: 12 answers, 0 errors" in result.stderr
    answers = [LINE.match(line) for line in lines[:-1]]
    assert all(answers), lines
    windows = {int(m.group(1)) for m in answers if m}
    assert windows == {0, 1, 2}
    assert {m.group(6) for m in answers if m} == {"speaks", "pitch", "mood", "talking"}
    # Tone bursts of 4 s with 1 s pauses: the span question finds them, at their times in the recording.
    talking = [m.group(8) for m in answers if m and m.group(6) == "talking"]
    assert all(t != "none" for t in talking)
