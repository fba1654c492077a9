"""Across jobs (where an emotion is strongest) and the operators' page (dead events, queue, webhooks)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.params import ascii_int
from app.api.responses import deps
from app.api.typed_input import QueryStruct, query_struct
from app.dashboard.jobs_pages import choice, metadata_filter, param, when
from app.dashboard.rendering import HEADERS, PREFIX, Ui, Viewer
from app.errors import Forbidden, InvalidInput, NotFound
from app.hume.emotions import MODELS
from app.inbox import replay as events
from app.store import analytics, operator_gauges
from app.store import inbox_events as inbox

ORDERS = ("mean", "max")


class TopPageQuery(QueryStruct):
    limit: Annotated[int, Meta(ge=1, le=200)] = 20


async def top_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    form = {
        "model": param(request, "model") or "face", "emotion": param(request, "emotion") or "",
        "by": choice(request, "by", ORDERS) or "mean", "metadata": param(request, "metadata") or "",
        "created_after": param(request, "created_after") or "",
        "created_before": param(request, "created_before") or "",
    }  # fmt: skip
    if form["model"] not in MODELS:
        raise InvalidInput("model", f"must be one of {', '.join(MODELS)}")
    limit = query_struct(request, TopPageQuery).limit
    items = None
    names: dict[str, list[str]] = {}
    async with deps(request).sessionmaker() as db:
        names = await analytics.emotion_names(db)
        if form["emotion"]:
            name = await analytics.emotion_name(db, form["model"], form["emotion"])
            if name is None:
                raise InvalidInput("emotion", f"{form['emotion']!r} is not an emotion of the {form['model']} model")
            form["emotion"] = name
            items = await analytics.top_emotion(
                db, model=form["model"], emotion=name, limit=limit, by=form["by"],
                created_after=when(request, "created_after"), created_before=when(request, "created_before"),
                metadata=metadata_filter(request), tenant=viewer.read_tenant,
            )  # fmt: skip
    return ui.render(
        request, "top.html", viewer=viewer, form=form, limit=limit, items=items, models=MODELS, orders=ORDERS,
        emotions=names.get(form["model"], []),
    )  # fmt: skip


def _admin(viewer: Viewer) -> None:
    if "admin" not in viewer.scopes:
        raise Forbidden("The operators' page needs an API key with the admin scope.")


async def operators_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    _admin(viewer)
    async with deps(request).sessionmaker() as db:
        dead = await inbox.page(db, state="dead", limit=50)
        recent = await inbox.page(db, state=None, limit=25)
        pending = await inbox.count_pending(db)
        depth = await operator_gauges.queue_depth(db)
    return ui.render(
        request, "operators.html", viewer=viewer, dead=dead, recent=recent, pending=pending, depth=depth,
        replayed=param(request, "replayed"),
    )  # fmt: skip


async def replay(ui: Ui, request: Request, viewer: Viewer) -> Response:
    """Replay a dead event through the same service function as POST /v1/admin/events/{id}/replay."""
    _admin(viewer)
    await ui.form(request, viewer)
    event_id = ascii_int(request.path_params["event_id"])
    if event_id is None or not 0 < event_id < 2**63:
        raise NotFound("There is no such event.")
    await events.replay(deps(request), event_id)
    return RedirectResponse(f"{PREFIX}/operators?replayed={event_id}", status_code=303, headers=HEADERS)
