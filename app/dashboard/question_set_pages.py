"""Question sets on the dashboard: the viewer's sets (each family's newest version), and one set with a chart
per question of how it was answered across every recording its versions were asked about (the same reads as the
API's distribution), with the recordings that answer it most strongly.

Charts count answers, one per window: a recording cut into four windows answers each question four times.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app.api.responses import deps
from app.dashboard import charts
from app.dashboard.rendering import Ui, Viewer
from app.errors import NotFound
from app.store import decision_reads, question_sets
from app.store.decision_reads import QuestionFilter
from app.store.tables import QuestionSet

MAX_SETS = 200
TOP = 5


@dataclass(frozen=True)
class QuestionChart:
    id: str
    type: str
    instructions: str
    answers: int
    figures: str
    """The distribution's figures in words (mean and spread, wins, ...)."""
    chart: Markup | None
    strongest: list[dict[str, Any]]
    strongest_by: str


def _share_bins(found: dict[str, Any]) -> tuple[list[str], list[float]]:
    bins = found["histogram"]
    return [f"{b['from']:.1f}-{b['to']:.1f}" for b in bins], [float(b["count"]) for b in bins]


def _plot(question: dict[str, Any], found: dict[str, Any]) -> tuple[list[str], list[float], str]:
    """(columns, counts, figures) of a question's distribution."""
    kind = question["type"]
    if kind == "noul":
        columns, counts = _share_bins(found)
        spread = "" if found["stddev"] is None else f" ± {found['stddev']:.2f}"
        mean = "no share" if found["mean"] is None else f"mean share {found['mean']:.2f}{spread}"
        return columns, counts, f"{mean}: answers by share of raters saying yes"
    if kind == "choice":
        names = list((question.get("criteria") or {}).keys())
        wins = {o["option"]: o["wins"] for o in found["options"]}
        names += [str(o) for o in wins if o not in names and o is not None]
        probabilities = ", ".join(
            f"{o['option']} {o['mean_probability']:.2f}" for o in found["options"] if o["mean_probability"] is not None
        )
        return names, [float(wins.get(n, 0)) for n in names], f"answers by winning option; mean shares {probabilities}"
    if kind == "score":
        levels = list(question.get("criteria") or [])
        columns = [f"{i} {levels[i]}" if i < len(levels) else str(i) for i in range(len(found["histogram"]))]
        spread = "" if found["stddev"] is None else f" ± {found['stddev']:.2f}"
        mean = "no score" if found["mean"] is None else f"mean level {found['mean']:.2f}{spread}"
        return columns, [float(b["count"]) for b in found["histogram"]], f"{mean}: answers by nearest level"
    heard = found["with_spans"]
    covered = found["total_span_ms"] / found["total_window_ms"] if found["total_window_ms"] else 0.0
    figures = f"{found['spans']} spans in {heard} windows, covering {covered:.1%} of the audio asked"
    return ["with spans", "without"], [float(heard), float(found["answers"] - heard)], figures


async def _question(db: AsyncSession, question_set: QuestionSet, question: dict[str, Any], tenant: str | None
                    ) -> QuestionChart:  # fmt: skip
    where = QuestionFilter(question_set.family_id, question["id"], question["type"], tenant=tenant)
    levels = len(question.get("criteria") or []) if question["type"] == "score" else 0
    found = await decision_reads.distribution(db, where, levels=levels)
    columns, counts, figures = _plot(question, found)
    label = f"{question['id']}: {figures}"
    chart = (
        charts.stacked_bars(columns, [(question["id"], counts)], label=label, unit="answers", height=180)
        if columns
        else None
    )
    option = None
    by = {"noul": "share", "score": "mean level", "span": "ms in spans"}.get(question["type"], "")
    if question["type"] == "choice":
        option = next(iter(question.get("criteria") or {}), None)
        by = f"share for {option}" if option else ""
    top = await decision_reads.strongest(db, where, limit=TOP, option=option) if by else []
    return QuestionChart(
        id=question["id"], type=question["type"], instructions=question["instructions"], answers=found["answers"],
        figures=figures, chart=chart, strongest=top, strongest_by=by,
    )  # fmt: skip


def _set_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["set_id"])
    except ValueError:
        raise NotFound("There is no question set with this id (it is not even an id).") from None


async def question_sets_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    async with deps(request).sessionmaker() as db:
        sets = await question_sets.newest_of_families(db, tenant=viewer.read_tenant, archived=False, limit=MAX_SETS)
    return ui.render(request, "question_sets.html", viewer=viewer, sets=sets, limit=MAX_SETS)


async def question_set_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    set_id = _set_id(request)
    async with deps(request).sessionmaker() as db:
        question_set = await question_sets.get(db, set_id, tenant=viewer.read_tenant)
        if question_set is None:
            raise NotFound(f"There is no question set {set_id}.")
        versions = await question_sets.versions(db, question_set.family_id)
        questions = [await _question(db, question_set, q, viewer.read_tenant) for q in question_set.questions]
    return ui.render(
        request, "question_set.html", viewer=viewer, qs=question_set, versions=versions, questions=questions,
        clock=charts.clock,
    )  # fmt: skip
