"""A URL we will POST our webhooks to (a registered endpoint or a job's notify_url), checked as input: a
422 naming the field for anything the egress guard would refuse at delivery time."""

from __future__ import annotations

from typing import Any

from app.egress.errors import BlockedUrl
from app.egress.url_guard import UrlGuard
from app.errors import InvalidInput

MAX_URL = 2048


async def checked_receiver_url(value: Any, guard: UrlGuard, field: str = "url") -> str:
    """An http(s) URL whose host resolves only to addresses we may call (or is allow-listed)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    if len(value) > MAX_URL:
        raise InvalidInput(field, f"must be at most {MAX_URL} characters")
    if not value.lower().startswith(("http://", "https://")):
        raise InvalidInput(field, "must be an http:// or https:// URL")
    try:
        await guard.check(value)
    except BlockedUrl as exc:
        raise InvalidInput(field, exc.message) from None
    return value
