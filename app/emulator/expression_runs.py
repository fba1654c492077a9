"""v1 runs, served by ``/v1/expression/run...``: every file request that reached measurement (expression_api.py).

Realtime sessions (realtime_session.py) are runs too, with mode `realtime`. Only they record events
(HUME-V1-FACTS §8), so a file run's event log is an empty page; the endpoint answers 404 for an unknown run.
Paging and filters: HUME-V1-FACTS §2 and endpoints.json (`reference/runs/list`, `reference/runs/list-events`).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth
from .expression_errors import ExpressionError, error_body
from .records import Run
from .responses import emu, json
from .state import EmulatorState

# HUME-V1-FACTS §2: page_size is an integer 1-200, default 50 (runs and events alike).
DEFAULT_PAGE = 50
MAX_PAGE = 200
# HUME-V1-FACTS §2 / other_enumerations in vocabularies.json (SDK run_status.py, run_mode.py, run_endpoint.py).
FILTERS: dict[str, tuple[str, ...]] = {
    "status": ("live", "ended", "errored"),
    "mode": ("realtime", "file"),
    "endpoint": ("audio", "video"),
}
# RFC 3339 date-time: full date, "T" (or a space, or lowercase t), full time, and a required offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def user_id(request: HTTPConnection) -> str:
    """A stable user id per organization: the API key, or the key a token was issued for (no accounts here).
    `request` is an HTTP request or a realtime session's WebSocket."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    state: EmulatorState = request.app.state.emu
    owner = auth.organization(state, headers) or ""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "hume-emulator-user:" + owner))


def record(request: Request, run: Run) -> None:
    state = emu(request)
    with state.lock:
        state.runs[run.run_id] = run


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ExpressionError("invalid_request", f"page_size must be an integer from 1 to {MAX_PAGE}.")
    return int(raw)


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    problem = ExpressionError("invalid_request", f"{name} must be an RFC 3339 date-time with an offset, got {raw!r}.")
    if not _RFC3339.fullmatch(raw):
        raise problem
    try:
        return datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise problem from exc


def _fail(exc: ExpressionError) -> Response:
    return json(error_body(exc.code, exc.message), status_code=exc.status)


async def list_runs(request: Request) -> Response:
    try:
        size = _page_size(request)
        before, after = _time(request, "started_before"), _time(request, "started_after")
        for key, allowed in FILTERS.items():
            value = request.query_params.get(key)
            if value is not None and value not in allowed:
                raise ExpressionError("invalid_request", f"{key} must be one of {', '.join(allowed)}, got {value!r}.")
    except ExpressionError as exc:
        return _fail(exc)
    state = emu(request)
    with state.lock:
        runs = sorted(state.runs.values(), key=lambda r: (r.started_at, r.seq), reverse=True)  # newest first
    q = request.query_params
    for key in ("user_id", *FILTERS):  # filters combine
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
    """A run's event log in `seq` order (HUME-V1-FACTS §8; SDK run_events_page.py): the cursor is the last seq
    of the previous page; `gaps` is always false here (every numbered event is stored)."""
    try:
        run = _find(request)
        size = _page_size(request)
        cursor = request.query_params.get("cursor")
        after = 0
        if cursor is not None:
            if not cursor.isascii() or not cursor.isdigit():
                raise ExpressionError("invalid_request", "cursor is not a next_cursor this server issued.")
            after = int(cursor)
    except ExpressionError as exc:
        return _fail(exc)
    state = emu(request)
    with state.lock:
        rest = [e for e in run.events if e["seq"] > after]
        capped = run.capped_kinds()
    page = rest[:size]
    body: dict[str, Any] = {"events": page, "at_cap": bool(capped), "capped_kinds": capped, "gaps": False}
    if len(rest) > size:
        body["next_cursor"] = str(page[-1]["seq"])
    return json(body)


routes = [
    Route("/v1/expression/run", list_runs, methods=["GET"]),
    Route("/v1/expression/run/{run_id}", get_run, methods=["GET"]),
    Route("/v1/expression/run/{run_id}/events", list_events, methods=["GET"]),
]
