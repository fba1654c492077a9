"""A decision job's answers on its page: per recording, a timeline of its span questions' spans (placed at their
time in the recording: a window's start plus the span's time in it) and a table of each window's typed answers.

At most MAX_ANSWERS answers are drawn (e.g. 20 questions x 500 windows); the API's pages and CSV hold them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from app.dashboard import charts
from app.store import decision_reads, question_sets
from app.store.tables import Job

MAX_ANSWERS = 10_000


@dataclass
class WindowRow:
    index: int
    start_s: float
    end_s: float
    cells: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Question id -> (what the cell shows, its tooltip)."""


@dataclass
class SourceAnswers:
    index: int
    url: str | None
    windows: list[WindowRow]
    timeline: Markup | None
    error: dict[str, Any] | None = None


@dataclass
class JobAnswers:
    question_set: dict[str, Any]
    questions: list[dict[str, Any]]
    sources: list[SourceAnswers]
    truncated: bool


def _cell(answer: dict[str, Any], question: dict[str, Any]) -> tuple[str, str]:
    primitive = answer["primitive"]
    if primitive == "noul":
        share = answer["share"]
        return ("—", "no share read") if share is None else (f"{share:.2f}", f"{share:.1%} of raters would say yes")
    if primitive == "choice":
        confidence = answer["confidence"]
        shown = answer["choice"] or "—"
        tip = ", ".join(f"{k} {v:.2f}" for k, v in (answer["option_probabilities"] or {}).items())
        return (shown if confidence is None else f"{shown} ({confidence:.2f})"), tip or "no probabilities read"
    if primitive == "score":
        score, top = answer["score"], max(len(question.get("criteria") or []) - 1, 0)
        levels = ", ".join(f"{k}: {v:.2f}" for k, v in (answer["level_probabilities"] or {}).items())
        return ("—" if score is None else f"{score:.2f} / {top}"), levels or "no level probabilities read"
    spans = answer["spans"] or []
    listed = "; ".join(
        f"{charts.clock(s['start_ms'] / 1000)}-{'?' if s.get('end_ms') is None else charts.clock(s['end_ms'] / 1000)}"
        f" ({s['probability']:.2f})"
        for s in spans
    )  # fmt: skip
    return f"{len(spans)} span{'' if len(spans) == 1 else 's'}", listed or "no span"


def _timeline(source: int, windows: list[WindowRow], answers: list[dict[str, Any]], spans_asked: list[str]) -> Markup:
    lanes = []
    for qid in spans_asked:
        found: list[tuple[float, float | None, float]] = []
        for a in answers:
            if a["question_id"] != qid:
                continue
            offset = a["window_start_ms"] / 1000
            for s in a["spans"] or []:
                end = s.get("end_ms")
                found.append((offset + s["start_ms"] / 1000, None if end is None else offset + end / 1000,
                              float(s["probability"])))  # fmt: skip
        lanes.append(charts.Lane(qid, found))
    extent = max((w.end_s for w in windows), default=1.0)
    cuts = [w.end_s for w in windows[:-1]]
    return charts.span_lanes(lanes, extent_s=extent, cuts=cuts, label=f"Source {source}: when each span question's "
                             "event occurs, window cuts dashed")  # fmt: skip


async def job_answers(db: AsyncSession, job: Job) -> JobAnswers | None:
    """The answers section of `job`'s page, or None when the job asked no questions."""
    plan = (job.request or {}).get("decisions")
    if not plan:
        return None
    pinned = await question_sets.get(db, uuid.UUID(plan["question_set"]), tenant=None)
    questions = list(pinned.questions) if pinned is not None else []
    rows = await decision_reads.job_answers(db, job.id, limit=MAX_ANSWERS + 1)
    truncated = len(rows) > MAX_ANSWERS
    rows = rows[:MAX_ANSWERS]
    by_id = {q["id"]: q for q in questions}
    spans_asked = [q["id"] for q in questions if q["type"] == "span"]
    progress = ((job.details or {}).get("decisions") or {}).get("sources") or []
    urls: list[str] = list(job.request.get("urls") or [])
    sources = []
    for index, url in enumerate(urls):
        answers = [r for r in rows if r["source_index"] == index]
        windows: dict[int, WindowRow] = {}
        for a in answers:
            row = windows.setdefault(
                a["window_index"], WindowRow(a["window_index"], a["window_start_ms"] / 1000, a["window_end_ms"] / 1000)
            )
            row.cells[a["question_id"]] = _cell(a, by_id.get(a["question_id"], {}))
        ordered = [windows[i] for i in sorted(windows)]
        timeline = _timeline(index, ordered, answers, spans_asked) if spans_asked and ordered else None
        error = progress[index].get("error") if index < len(progress) else None
        sources.append(SourceAnswers(index, url, ordered, timeline, error))
    described = {"id": plan["question_set"], "name": plan.get("name"), "version": plan.get("version"),
                 "family_id": plan.get("family_id")}  # fmt: skip
    return JobAnswers(question_set=described, questions=questions, sources=sources, truncated=truncated)
