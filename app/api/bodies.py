"""Request bodies: bounded in size and time, and parsed as one JSON object."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import ClientDisconnect, Request

from app.api.json_limits import parse_bounded
from app.api.responses import deps
from app.errors import ClientGone, InvalidInput, PayloadTooLarge, RequestTimeout


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
