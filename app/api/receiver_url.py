"""A URL we will POST our webhooks to (a registered endpoint or a job's notify_url), checked as input: read
by the parser that delivers it (yarl, under aiohttp) and judged by the guard's rules as delivery judges it,
so what registers is what delivery reaches. A refusal is a 422 naming the field and the rule; it never
quotes the URL (credentials would be echoed) nor an address the host resolved to."""

from __future__ import annotations

from typing import Any

from app.egress.errors import BlockedUrl
from app.egress.post import checked_receiver
from app.egress.url_guard import UrlGuard
from app.errors import InvalidInput

MAX_URL = 2048


async def checked_receiver_url(value: Any, guard: UrlGuard, field: str = "url") -> str:
    """An http(s) URL whose host resolves only to addresses we may call (or is allow-listed)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    if len(value) > MAX_URL:
        raise InvalidInput(field, f"must be at most {MAX_URL} characters")
    if "\x00" in value:
        raise InvalidInput(field, "must not contain NUL characters")  # Postgres text cannot hold them
    if not value.lower().startswith(("http://", "https://")):
        raise InvalidInput(field, "must be an http:// or https:// URL")
    try:
        await checked_receiver(guard, value)
    except BlockedUrl as exc:
        raise InvalidInput(field, exc.message) from None
    return value
