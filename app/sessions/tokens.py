"""Minting a live session's token: one rule for `POST /v1/session-tokens` (a backend's API key) and the
dashboard's live page (the signed-in key), so both answer the same token, expiry, job id and URLs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from app.core.times import iso
from app.deps import Deps
from app.sessions import service
from app.sessions.schemas import SessionTokenOut, SessionUrls
from app.store import live_sessions
from app.store.api_keys import Principal
from app.usage import session_meter


def ws_base(http_base: str) -> str:
    if http_base.startswith("https://"):
        return "wss://" + http_base.removeprefix("https://")
    return "ws://" + http_base.removeprefix("http://")


async def issue(d: Deps, principal: Principal, metadata: dict[str, Any]) -> SessionTokenOut:
    """A token bound to the principal's key and tenant; the caller has checked the `session` scope (the
    relay checks it again when the socket opens). BudgetSpent (429) when the tenant's day of Hume-metered
    seconds cannot pay for a session's minimum (the relay refuses such a socket too, 4429)."""
    await session_meter.check_can_open(d, principal.tenant)
    job_id = uuid.uuid4()
    async with d.sessionmaker.begin() as session:
        token, expires_at = await live_sessions.mint(
            session, api_key_id=principal.key_id, tenant=principal.tenant, job_id=job_id, metadata=metadata,
            ttl_s=d.settings.session_token_ttl_s,
        )  # fmt: skip
    base = ws_base(d.settings.callback_base_url)
    query = f"?token={quote(token)}"
    left = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    return SessionTokenOut(
        token=token, expires_in=left, expires_at=iso(expires_at) or "", job_id=str(job_id),
        urls=SessionUrls(audio=f"{base}/v1/sessions/audio{query}", video=f"{base}/v1/sessions/video{query}"),
        subprotocol=f"{service.TOKEN_SUBPROTOCOL}{token}",
    )  # fmt: skip
