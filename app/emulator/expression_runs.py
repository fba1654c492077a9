"""v1 runs: every file request is recorded as a run, served by ``/v1/expression/run...``.

File runs have no events (Hume: "Only realtime sessions record them"), so their event log is an
empty page; the endpoint still answers 404 for an unknown run and checks its paging parameters.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .expression_errors import ExpressionError, error_body
from .records import Run
from .responses import emu, json

DEFAULT_PAGE = 20
MAX_PAGE = 100


def user_id(request: Request) -> str:
    """A stable user id per credential (the emulator has no accounts)."""
    credential = request.headers.get("x-hume-api-key") or request.headers.get("authorization", "")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "hume-emulator-user:" + credential))


def record(request: Request, run: Run) -> None:
    state = emu(request)
    with state.lock:
        state.runs[run.run_id] = run


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ExpressionError("invalid_request", f"page_size must be an integer from 1 to {MAX_PAGE}.")
    return int(raw)


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ExpressionError("invalid_request", f"{name} must be an RFC 3339 time.") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _fail(exc: ExpressionError) -> Response:
    return json(error_body(exc.code, exc.message), status_code=exc.status)


async def list_runs(request: Request) -> Response:
    try:
        size = _page_size(request)
        before, after = _time(request, "started_before"), _time(request, "started_after")
    except ExpressionError as exc:
        return _fail(exc)
    state = emu(request)
    with state.lock:
        runs = sorted(state.runs.values(), key=lambda r: (r.started_at, r.run_id), reverse=True)
    q = request.query_params
    for key in ("user_id", "status", "mode", "endpoint"):
        if q.get(key) is not None:
            runs = [r for r in runs if r.summary()[key] == q[key]]
    runs = [r for r in runs if (before is None or r.started_at < before) and (after is None or r.started_at >= after)]
    cursor = q.get("cursor")
    if cursor is not None:
        index = next((i for i, r in enumerate(runs) if r.run_id == cursor), None)
        if index is None:
            return _fail(ExpressionError("invalid_request", "cursor is not a next_cursor this server issued."))
        runs = runs[index + 1 :]
    page = runs[:size]
    body: dict[str, Any] = {"runs": [r.summary() for r in page]}
    if len(runs) > size:
        body["next_cursor"] = page[-1].run_id
    return json(body)


def _find(request: Request) -> Run:
    state = emu(request)
    with state.lock:
        run = state.runs.get(request.path_params["run_id"])
    if run is None:
        raise ExpressionError("not_found", "No run with this id.")
    return run


async def get_run(request: Request) -> Response:
    try:
        return json(_find(request).full())
    except ExpressionError as exc:
        return _fail(exc)


async def list_events(request: Request) -> Response:
    try:
        _find(request)
        _page_size(request)
    except ExpressionError as exc:
        return _fail(exc)
    return json({"events": [], "at_cap": False, "capped_kinds": [], "gaps": False})


routes = [
    Route("/v1/expression/run", list_runs, methods=["GET"]),
    Route("/v1/expression/run/{run_id}", get_run, methods=["GET"]),
    Route("/v1/expression/run/{run_id}/events", list_events, methods=["GET"]),
]
