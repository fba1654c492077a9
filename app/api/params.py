"""Numbers and ids in paths and query strings: ASCII digits only; a path that names nothing is a 404, a bad
query parameter a 422 naming it. Typed query parameters are declared as QueryStructs (app/api/typed_input.py)."""

from __future__ import annotations

import re
import uuid

from starlette.requests import Request

from app.errors import InvalidInput, NotFound


def path_uuid(request: Request, name: str, what: str) -> uuid.UUID:
    """The path's UUID `name` (ASCII hex: uuid.UUID also reads other scripts' digits); else a 404 naming `what`."""
    raw = request.path_params[name]
    try:
        if not raw.isascii():
            raise ValueError(raw)
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"unknown {what}") from None


# Numbers in paths and query strings: ASCII only. int() and float() also take other scripts' digits (U+0665,
# ARABIC-INDIC DIGIT FIVE, is 5), spaces, "+" and "1_000", and str.isdigit() is true for "²", which int() then
# refuses (a 500 when a route trusted isdigit). 19 digits hold every id up to 2**63 - 1 (bigint).
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_DECIMAL = re.compile(r"-?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][-+]?[0-9]{1,3})?")
MAX_ID = 2**63 - 1


def ascii_int(raw: str | None) -> int | None:
    """`raw` as an integer when it is written with ASCII digits only (an optional leading -), else None."""
    if raw is None or not _INTEGER.fullmatch(raw):
        return None
    return int(raw)


def ascii_float(raw: str | None) -> float | None:
    """`raw` as a number when it is written as ASCII decimal digits (point and exponent optional), else None."""
    if raw is None or not _DECIMAL.fullmatch(raw):
        return None
    return float(raw)


def path_id(request: Request, name: str, what: str) -> int:
    """The path's positive bigint id `name`; anything else is a 404 naming `what` ("webhook message")."""
    value = ascii_int(request.path_params[name])
    if value is None or not 0 < value <= MAX_ID:
        raise NotFound(f"unknown {what}")
    return value


def id_param(request: Request, name: str, message: str = "must be a positive integer id") -> int | None:
    """The optional query parameter `name` as a positive bigint id (a cursor, `before`); else a 422."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = ascii_int(raw)
    if value is None or not 0 < value <= MAX_ID:
        raise InvalidInput(name, message)
    return value
