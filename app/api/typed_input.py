"""Client input into declared msgspec structs, validated once; a failure is the usual 422 naming the field.

The structs carry the limits (msgspec `Meta`), so the OpenAPI document generated from them states the same
limits the service enforces. What a schema cannot say (URL schemes, NUL characters Postgres refuses, JSON
inside a query string) is checked by small functions after decoding.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import msgspec
from starlette.requests import Request

from app.api.json_limits import parse_metadata_filter
from app.errors import InvalidInput

S = TypeVar("S", bound=msgspec.Struct)

# msgspec: "Expected `int`, got `str` - at `$.limit`", "Object contains unknown field `colour` - at `$.voice`".
_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`")


class QueryStruct(msgspec.Struct, kw_only=True):
    """Query parameters: absent ones take their defaults, unknown ones are ignored (as browsers add some)."""

    # Old parameter names still accepted, {old: new}; the document lists them as deprecated.
    aliases: ClassVar[dict[str, str]] = {}


def _field(path: str, problem: str) -> tuple[str, str]:
    """The field a msgspec error is about ("urls[0]", "models.face", "voice.name") and the problem."""
    field = path.lstrip(".").replace("[...]", "")
    named = _NAMED.match(problem)
    if named:
        field = f"{field}.{named['name']}" if field else named["name"]
        problem = "required" if "missing" in problem else "unknown field"
    return field or "body", problem[:1].lower() + problem[1:]


def invalid(error: msgspec.ValidationError) -> InvalidInput:
    match = _AT.match(str(error))
    assert match is not None  # the pattern matches any text
    field, problem = _field(match["path"] or "", match["problem"])
    return InvalidInput(field, problem)


def body_struct(data: dict[str, Any], kind: type[S]) -> S:
    """A parsed JSON object as `kind` (strict: no string-to-number guessing in bodies)."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise invalid(exc) from None


def query_struct(request: Request, kind: type[S]) -> S:
    """The query string as `kind`; text parameters arrive as strings and are converted (?limit=5 -> 5)."""
    aliases: dict[str, str] = getattr(kind, "aliases", {})
    params: dict[str, str] = {}
    for name, value in request.query_params.items():
        if "\x00" in value:
            # Postgres text cannot hold NUL; left alone it would fail the query as a 500.
            raise InvalidInput(name, "must not contain NUL characters")
        params.setdefault(aliases.get(name, name), value)
    try:
        return msgspec.convert(params, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid(exc) from None


def json_object_param(name: str, raw: str | None) -> dict[str, Any] | None:
    """A query parameter holding a JSON object (a metadata containment filter), under the bounds of stored
    metadata: depth checked while parsing, NUL-free, numbers that round-trip, at most 16 KiB."""
    if raw is None:
        return None
    return parse_metadata_filter(raw, name)


def datetime_param(name: str, raw: str | None) -> datetime | None:
    """ISO 8601 (a date alone means its midnight); the schema says date-time, this also takes the date."""
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(name, "must be an ISO 8601 date or time") from None
