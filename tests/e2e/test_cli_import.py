"""`python -m app import|summary|export`, run as an analyst would, on a Hume file downloaded before the sunset."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import pytest

from app.hume.emotions import EXPRESSIONS_48
from tests.e2e.test_cli import run_cli
from tests.fixtures import REAL_PREDICTIONS


@pytest.mark.slow
def test_import_then_summary_and_csv_export(database_url: str) -> None:
    """import prints the new job id last; summary prints every face emotion with the 1,075 predictions;
    export writes one CSV row per prediction with a column per emotion and the scores from the file."""
    imported = run_cli("import", str(REAL_PREDICTIONS), database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    job_id = imported.stdout.strip().splitlines()[-1]
    uuid.UUID(job_id)

    summary = run_cli("summary", job_id, database_url=database_url)
    assert summary.returncode == 0, summary.stderr
    body = json.loads(summary.stdout)
    face = body["models"]["face"]
    assert body["job_id"] == job_id and face["predictions"] == 1075
    assert {e["name"] for e in face["emotions"]} == set(EXPRESSIONS_48)

    export = run_cli("export", job_id, database_url=database_url)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert len(rows) == 1075
    raw = json.loads(REAL_PREDICTIONS.read_bytes())
    group = raw[0]["results"]["predictions"][0]["models"]["face"]["grouped_predictions"][0]
    first = next(r for r in rows if r["group"] == group["id"])
    expected = group["predictions"][0]
    assert first["frame"] == str(expected["frame"]) and first["source_url"] == raw[0]["source"]["url"]
    for e in expected["emotions"]:
        assert abs(float(first[e["name"]]) - e["score"]) <= 0.51e-4  # 4 decimals


def test_import_of_a_file_that_is_not_hume_predictions_fails_cleanly(database_url: str, tmp_path: Path) -> None:
    """A JSON file of another shape is refused with a message, exit code 2, and no job is created."""
    bad = tmp_path / "not-predictions.json"
    bad.write_text('{"job_id": "x"}')
    result = run_cli("import", str(bad), database_url=database_url)
    assert result.returncode == 2
    assert "not a Hume predictions array" in result.stderr
    assert "Traceback" not in result.stderr


def test_summary_of_an_unknown_job_says_so(database_url: str) -> None:
    """summary and export name the problem for an unknown or malformed job id instead of printing a trace."""
    unknown = run_cli("summary", str(uuid.uuid4()), database_url=database_url)
    assert unknown.returncode == 1 and "no job" in unknown.stderr
    malformed = run_cli("export", "nope", database_url=database_url)
    assert malformed.returncode == 2 and "not a job id" in malformed.stderr
