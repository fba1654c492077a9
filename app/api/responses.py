"""Answers as JSON, and the Deps a request runs with."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.deps import Deps


def _struct(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        # Times and ids stay for orjson, which writes them as the API always has (+00:00, not Z).
        return msgspec.to_builtins(value, builtin_types=(datetime, uuid.UUID))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return _struct(value)


class JSON(Response):
    """JSON made by orjson; the declared response structs (msgspec) are written field by field."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=_struct, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # An integer beyond 64 bits (jsonb returns a client's 1e19 as an exact integer): the standard
            # library writes it; anything truly unserializable fails there too.
            return json.dumps(content, default=_plain, separators=(",", ":")).encode()


def deps(request: Request) -> Deps:
    # The lifespan's state dict itself: request.state wraps it in a new State object on every access.
    value = request.scope["state"]["deps"]
    assert isinstance(value, Deps)
    return value
