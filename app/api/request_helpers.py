"""Small HTTP helpers shared by the routes: JSON responses, bounded bodies, API-key auth."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from typing import Any

import msgspec
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.api.json_limits import parse_bounded
from app.deps import Deps
from app.errors import ClientGone, Forbidden, InvalidInput, NotFound, PayloadTooLarge, RequestTimeout, Unauthorized
from app.store import api_keys, jobs
from app.store.api_keys import Principal
from app.store.tables import Job

# Key lookups are cached briefly: a revoked key stops working within this many seconds.
_KEY_CACHE_TTL_S = 10.0
_key_cache: dict[str, tuple[float, Principal | None]] = {}


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


def _job_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["job_id"])
    except ValueError:
        raise NotFound("unknown job") from None


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
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized()
    digest = api_keys.hash_key(key.strip())
    now = time.monotonic()
    cached = _key_cache.get(digest)
    if cached is not None and cached[0] > now:
        principal = cached[1]
    else:
        async with deps(request).sessionmaker() as session:
            principal = await api_keys.find_by_hash(session, digest)
        if len(_key_cache) > 10_000:
            _key_cache.clear()
        _key_cache[digest] = (now + _KEY_CACHE_TTL_S, principal)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    if scope not in principal.grants:
        raise Forbidden(f"this key lacks the '{scope}' scope")
    request.state.principal = principal
    return principal


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, "must be an integer") from None
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value


def query_float(request: Request, name: str, default: float | None, *, low: float, high: float) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(name, "must be a number") from None
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value
