"""One way a job ends: only `outbox.end_job` moves a job to a final status, so every end (any backend, any
path) queues its notifications in the same transaction. A call elsewhere that writes completed, failed or
rejected fails this test, naming the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

from app.core.job_status import FINAL

APP = Path(__file__).resolve().parents[2] / "app"
THE_END = APP / "worker" / "outbox.py"
# A predictions document imported from before Hume's batch sunset is stored as the job it was: it never ran
# here, so nothing ends (and nobody subscribed to it could have waited for it).
BORN_FINAL = {APP / "batch" / "prediction_import.py"}


def final_status_writes(source: str) -> list[int]:
    """Lines of `advance(..., "<final>", ...)` calls and of calls with `status="<final>"`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        positional = {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
        keyword = {kw.value.value for kw in node.keywords if kw.arg == "status" and isinstance(kw.value, ast.Constant)}
        if (name == "advance" and positional & FINAL) or keyword & FINAL:
            lines.append(node.lineno)
    return lines


def test_only_end_job_writes_a_final_status() -> None:
    offenders = [
        f"{path.relative_to(APP.parent)}:{line}"
        for path in sorted(APP.rglob("*.py"))
        if path != THE_END and path not in BORN_FINAL and "emulator" not in path.parts
        for line in final_status_writes(path.read_text())
    ]  # fmt: skip
    assert offenders == [], f"final statuses written outside outbox.end_job: {offenders}"


def test_the_check_sees_each_way_of_writing_one() -> None:
    assert final_status_writes('await jobs.advance(session, job_id, "failed", error="x")') == [1]
    assert final_status_writes('await jobs.create(session, kind="batch", status="completed")') == [1]
    assert final_status_writes('await jobs.advance(session, job_id, "in_progress")') == []
