"""``/_emulator/...``: test and developer controls (no Hume auth)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .faults import FaultSpecError
from .responses import emu, json, read_json


async def health(request: Request) -> Response:
    return json({"ok": True})


async def calls(request: Request) -> Response:
    return json({"calls": dict(emu(request).calls)})


async def reset(request: Request) -> Response:
    emu(request).reset()
    return json({"ok": True})


async def get_faults(request: Request) -> Response:
    return json(emu(request).faults.snapshot())


async def set_faults(request: Request) -> Response:
    try:
        spec: Any = await read_json(request)
        specs = spec if isinstance(spec, list) else [spec]
        for one in specs:
            emu(request).faults.apply(one)
    except (orjson.JSONDecodeError, FaultSpecError, ValueError, TypeError) as exc:
        return json({"error": str(exc)}, status_code=400)
    return json(emu(request).faults.snapshot())


async def deliveries(request: Request) -> Response:
    kind = request.query_params.get("kind")
    items = [d for d in emu(request).deliveries if kind is None or d.get("kind") == kind]
    return json({"deliveries": items})


async def jobs(request: Request) -> Response:
    """Every job with its markers' effects, a debugging aid beyond what Hume shows."""
    return json(
        {
            "jobs": [
                {
                    **j.to_json(),
                    "should_fail": j.should_fail,
                    "drop_callback": j.drop_callback,
                    "duplicate_callback": j.duplicate_callback,
                    "extra_delay_s": j.extra_delay_s,
                }
                for j in emu(request).jobs.values()
            ]
        }
    )


routes = [
    Route("/_emulator/health", health, methods=["GET"]),
    Route("/_emulator/calls", calls, methods=["GET"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/faults", get_faults, methods=["GET"]),
    Route("/_emulator/faults", set_faults, methods=["POST"]),
    Route("/_emulator/deliveries", deliveries, methods=["GET"]),
    Route("/_emulator/jobs", jobs, methods=["GET"]),
]
