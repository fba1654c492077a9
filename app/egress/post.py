"""A guarded POST of a small body (our outbound webhooks): no redirects followed, a bounded answer, a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from app.egress.errors import FetchFailed
from app.egress.pinned import PinnedClient


@dataclass(frozen=True)
class PostResponse:
    status: int
    headers: httpx.Headers
    body: bytes
    """At most `max_response_bytes` of the answer; the rest is never read."""
    truncated: bool


async def post_small(
    client: PinnedClient,
    url: str,
    content: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    max_response_bytes: int = 4096,
) -> PostResponse:
    """POST `content` to `url` and return the status with the first bytes of the answer.

    Any status is returned, 3xx included (a webhook receiver that redirects is not followed: the new
    address was never configured by anyone). Raises BlockedUrl, or FetchFailed on timeout/connection errors.
    """
    per_op = httpx.Timeout(timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            async with client.open("POST", url, headers=headers, content=content, timeouts=per_op) as (response, _):
                body = bytearray()
                truncated = False
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= max_response_bytes:
                        truncated = len(body) > max_response_bytes
                        # Dropping the connection beats draining an answer we will not read.
                        break
                return PostResponse(
                    status=response.status_code,
                    headers=response.headers,
                    body=bytes(body[:max_response_bytes]),
                    truncated=truncated,
                )
    except TimeoutError:
        raise FetchFailed(
            f"POST to {url.split('?', 1)[0][:300]} took longer than {timeout_s:g} s", kind="timeout"
        ) from None
