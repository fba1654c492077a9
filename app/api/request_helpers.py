"""Small HTTP helpers shared by the routes: JSON responses, bounded bodies, API-key auth."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime
from typing import Any

import msgspec
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.api import auth_throttle
from app.api.json_limits import parse_bounded
from app.deps import Deps
from app.errors import ClientGone, Forbidden, InvalidInput, NotFound, PayloadTooLarge, RequestTimeout, Unauthorized
from app.store import api_keys, jobs
from app.store.api_keys import Principal
from app.store.tables import Job


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
    value = request.state.deps
    assert isinstance(value, Deps)
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes before reading them all (413), and a sender too slow to
    finish within BODY_READ_TIMEOUT_S (408: one byte every few seconds must not hold a connection forever)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body exceeds {limit} bytes", headers={"Connection": "close"})
        except ValueError:
            raise InvalidInput("content-length", "not a number") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deps(request).settings.body_read_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body exceeds {limit} bytes", headers={"Connection": "close"})
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout("the body was not sent in time") from None
    except ClientDisconnect:
        raise ClientGone() from None
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    data = parse_bounded(body)
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    return data


def path_uuid(request: Request, name: str, what: str) -> uuid.UUID:
    """The path's UUID `name` (ASCII hex: uuid.UUID also reads other scripts' digits); else a 404 naming `what`."""
    raw = request.path_params[name]
    try:
        if not raw.isascii():
            raise ValueError(raw)
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"unknown {what}") from None


def _job_id(request: Request) -> uuid.UUID:
    return path_uuid(request, "job_id", "job")


async def existing_job(request: Request) -> Job:
    """The job the path names, if the caller (see `authorize`) may read it: another tenant's job is a 404,
    indistinguishable from one that does not exist."""
    async with deps(request).sessionmaker() as session:
        job = await jobs.get(session, _job_id(request))
    principal = getattr(request.state, "principal", None)
    tenant = principal.read_tenant if isinstance(principal, Principal) else api_keys.DEFAULT_TENANT
    if job is None or (tenant is not None and job.tenant != tenant):
        raise NotFound("unknown job")
    return job


async def authorize(request: Request, scope: str) -> Principal:
    """The key's principal, looked up on every request and never cached: the lookup (one read by the unique
    key_hash index) is itself the revocation check, so a key revoked by any process answers 401 on its next
    request in every process. A cache would have to be checked against Postgres on each request anyway
    (a revocation generation), which costs the same round trip. Wrong keys count against the client's
    address (`auth_throttle`), which answers 429 before any lookup once it failed too often."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized()
    digest = api_keys.hash_key(key.strip())
    throttle = auth_throttle.for_app(request)
    client = auth_throttle.client_of(request)
    wait_s = throttle.wait_s(client, digest)
    if wait_s:
        raise auth_throttle.TooManyFailures(wait_s)
    principal = await api_keys.authenticate(deps(request).sessionmaker, digest)
    if principal is None:
        throttle.failed(client, digest)
        raise Unauthorized("unknown or revoked API key")
    throttle.succeeded(digest)
    if scope not in principal.grants:
        raise Forbidden(f"this key lacks the '{scope}' scope")
    request.state.principal = principal
    return principal


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


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = ascii_int(raw)
    if value is None:
        raise InvalidInput(name, "must be an integer (ASCII digits)")
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value


def query_float(request: Request, name: str, default: float | None, *, low: float, high: float) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = ascii_float(raw)
    if value is None:
        raise InvalidInput(name, "must be a number (ASCII digits)")
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value
