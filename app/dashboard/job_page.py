"""One job: per model the top emotions (bars) and a timeline of viewer-chosen emotions (lines), the
sources with their errors, export links, and for an EVI chat its transcript.

The browser gets bucketed aggregates only (about 240 points per line by default), never predictions:
a one-hour video's page stays a few tens of kB.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated, Any

from markupsafe import Markup
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app.api.responses import deps
from app.api.typed_input import QueryStruct, query_struct
from app.dashboard import charts
from app.dashboard.job_answers import job_answers
from app.dashboard.jobs_pages import job_row
from app.dashboard.rendering import Ui, Viewer
from app.errors import InvalidInput, NotFound
from app.hume.emotions import MODELS
from app.store import analytics, jobs
from app.store.tables import Job

DEFAULT_LINES = 5
MAX_LINES = 8
MAX_POINTS = 2000
"""A smaller bucket than the job's length / this would draw more points than a screen has pixels."""
ALL_GROUPS = ""


@dataclass(frozen=True)
class Timeline:
    model: str
    emotions: list[str]
    choices: list[str]
    bucket: float
    note: str | None
    groups: list[str]
    group: str
    svg: Markup


class TimelineQuery(QueryStruct):
    bucket: Annotated[float, Meta(ge=0.001, le=86_400.0)] | None = None


async def _job(request: Request, viewer: Viewer) -> Job:
    """The job the path names, if the viewer may read it: another tenant's job is the same "no job" page as
    one that does not exist, so ids cannot be probed."""
    try:
        job_id = uuid.UUID(request.path_params["job_id"])
    except ValueError:
        raise NotFound("There is no job with this id (it is not even a job id).") from None
    async with deps(request).sessionmaker() as db:
        job = await jobs.get(db, job_id)
    if job is None or (viewer.read_tenant is not None and job.tenant != viewer.read_tenant):
        raise NotFound(f"There is no job {job_id}.")
    return job


def _combine(points: list[dict[str, Any]], group: str) -> list[tuple[float, float]]:
    """One group's points, or all groups merged per bucket (count-weighted mean, exact)."""
    if group != ALL_GROUPS:
        return [(p["time_begin"], p["mean"]) for p in points if p["group"] == group]
    sums: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in points:
        sums[p["time_begin"]][0] += p["mean"] * p["count"]
        sums[p["time_begin"]][1] += p["count"]
    return [(t, total / n) for t, (total, n) in sorted(sums.items()) if n]


async def timeline(
    db: AsyncSession, job_id: uuid.UUID, model: str, *, choices: list[str], wanted: list[str],
    bucket: float | None, group: str, extent_s: float,
) -> Timeline:  # fmt: skip
    emotions = [e for e in dict.fromkeys(wanted) if e in choices][:MAX_LINES] or choices[:DEFAULT_LINES]
    smallest = extent_s / MAX_POINTS
    note = None
    if bucket is None:
        bucket = charts.default_bucket(extent_s)
    elif bucket < smallest:
        note = f"Bucket raised from {bucket:g} s to {smallest:.3g} s: at most {MAX_POINTS} points per line."
        bucket = smallest
    groups: set[str] = set()
    series = []
    positions = await analytics.emotion_positions(db, model, emotions)  # the choices: this job's own summary
    lines = await analytics.timelines(
        db, job_id, model=model, positions=[positions[e] for e in emotions], bucket_s=bucket, by_group=True
    )
    for emotion, points in zip(emotions, lines, strict=True):
        groups.update(p["group"] for p in points if p["group"] is not None)
        series.append(charts.Series(emotion, _combine(points, group)))
    label = f"{model} timeline: mean score per {bucket:g} s of " + ", ".join(emotions)
    return Timeline(
        model=model, emotions=emotions, choices=choices, bucket=bucket, note=note, groups=sorted(groups),
        group=group, svg=charts.line_chart(series, label=label),
    )  # fmt: skip


def _top3(emotions: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(emotions.items(), key=lambda kv: -kv[1])[:3]


async def transcript(db: AsyncSession, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """An EVI chat's scored utterances in time order, each with its speaker and top three emotions."""
    rows = await analytics.predictions_page(
        db, analytics.PredictionFilter(job_id=job_id, model="prosody"), after_id=None, limit=5000
    )
    rows.sort(key=lambda r: (r["time_begin"] or 0.0, r["id"]))
    return [
        {"speaker": r["group"] or "unknown", "time": r["time_begin"], "text": r["text"] or "",
         "top": _top3(r["scores"])}
        for r in rows
    ]  # fmt: skip


def _wanted(request: Request, model: str) -> tuple[list[str], float | None, str]:
    """The viewer's choices for `model`'s timeline (they apply to the model named in ?model=)."""
    if request.query_params.get("model") != model:
        return [], None, ALL_GROUPS
    bucket = query_struct(request, TimelineQuery).bucket
    return request.query_params.getlist("emotion"), bucket, request.query_params.get("group", ALL_GROUPS)


async def job_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    job = await _job(request, viewer)
    models: list[dict[str, Any]] = []
    async with deps(request).sessionmaker() as db:
        summary = await analytics.summary(db, job.id)
        sources = await analytics.job_sources(db, job.id)
        extents = await analytics.time_extent(db, job.id)
        for model, info in summary.items():
            choices = [e["name"] for e in info["emotions"]]
            entry: dict[str, Any] = {"name": model, "predictions": info["predictions"], "timeline": None}
            top = info["emotions"][:10]
            entry["bars"] = charts.bar_chart(
                [(e["name"], e["mean"], e["max"]) for e in top], label=f"{model}: top emotions, mean and max"
            )
            if model in extents and choices and job.predictions_expired_at is None:
                wanted, bucket, group = _wanted(request, model)
                entry["timeline"] = await timeline(
                    db, job.id, model, choices=choices, wanted=wanted, bucket=bucket, group=group,
                    extent_s=extents[model],
                )  # fmt: skip
            models.append(entry)
        chat = await transcript(db, job.id) if job.kind == "evi_chat" else None
        answers = await job_answers(db, job)
    return ui.render(
        request, "job.html", viewer=viewer, job=job_row(job), detail=job, models=models, sources=sources,
        transcript=chat, answers=answers, clock=charts.clock,
    )  # fmt: skip


async def timeline_fragment(ui: Ui, request: Request, viewer: Viewer) -> Response:
    """Just one model's timeline figure, for the page's script to swap in when the viewer changes it."""
    job = await _job(request, viewer)
    model = request.query_params.get("model")
    if model not in MODELS:
        raise InvalidInput("model", f"must be one of {', '.join(MODELS)}")
    async with deps(request).sessionmaker() as db:
        summary = await analytics.summary(db, job.id)
        extents = await analytics.time_extent(db, job.id)
        if model not in summary or model not in extents:
            raise NotFound(f"This job has no {model} timeline.")
        wanted, bucket, group = _wanted(request, model)
        choices = [e["name"] for e in summary[model]["emotions"]]
        view = await timeline(
            db, job.id, model, choices=choices, wanted=wanted, bucket=bucket, group=group, extent_s=extents[model]
        )
    return ui.render(request, "timeline.html", viewer=viewer, job=job_row(job), t=view)
