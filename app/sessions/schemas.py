"""The declared shapes of POST /v1/session-tokens."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta


class SessionTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    metadata: Annotated[dict[str, Any], Meta(description="yours: stored with the session's job, filterable")] | None = (
        None
    )


class SessionUrls(msgspec.Struct):
    audio: str
    video: str


class SessionTokenOut(msgspec.Struct):
    """A token that opens one live session, once, within `expires_in` seconds."""

    token: str
    expires_in: Annotated[int, Meta(ge=0, description="seconds left to open the session with it")]
    expires_at: str
    job_id: Annotated[str, Meta(description="the id the session's job will have (GET /v1/jobs/{job_id})")]
    urls: Annotated[SessionUrls, Meta(description="where a browser opens the session, with the token in the query")]
    subprotocol: Annotated[
        str, Meta(description="or send the token as this WebSocket subprotocol (offered beside `hes.session`)")
    ]
