"""Dashboard sessions: a signed cookie naming the API key's id (never the key), a session id, an expiry and a
CSRF nonce.

The cookie is `base64(json).hex(hmac-sha256)`. The secret is DASHBOARD_SECRET (Settings.dashboard_secret);
without it a random secret is drawn per process (`dashboard_routes.routes`), so sessions end when the service
restarts (development only: `serve` refuses to start without it elsewhere). The signature only spares the
database a forged cookie: every page then reads the key and the session in one query (`api_keys.session_key`),
so a revoked key, or a session signed out in any process, ends at once, however the cookie was copied.

The cookie is SameSite=Lax: a link from another site (a chat, a mail) opens the page signed in, while a
cross-site form post carries no cookie (and every form also needs the session's CSRF token).

What the sign-in page says about a session that ended is chosen by a code (`NOTICES`), never by text from the
URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson

COOKIE = "dashboard_session"
SESSION_TTL_S = 8 * 3600
"""A working day; signing in again costs one paste of the key."""

# The notices the sign-in page may show, by the code in `?reason=`; any other value shows nothing.
NOTICES: dict[str, str] = {
    "signin": "Please sign in.",
    "invalid": "Your session is not valid (it was changed or made by another server). Please sign in.",
    "expired": "Your session has expired. Please sign in again.",
    "ended": "This session was signed out or its API key was revoked. Please sign in.",
    "no_read": "The API key of this session no longer has the read scope.",
    "signed_out": "Signed out.",
}


@dataclass(frozen=True)
class Session:
    key_id: uuid.UUID
    expires_at: float
    csrf: str
    sid: str = ""

    @property
    def sid_hash(self) -> str:
        """What the store keeps of a signed-out session: its id's hash, never the id a cookie carries."""
        return hashlib.sha256(self.sid.encode()).hexdigest()


class SessionError(Exception):
    """The cookie is missing, tampered with, expired or ended; `code` is a key of NOTICES."""

    def __init__(self, code: str) -> None:
        assert code in NOTICES, code
        super().__init__(NOTICES[code])
        self.code = code


def _mac(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def encode(secret: bytes, session: Session) -> str:
    body = orjson.dumps({"k": str(session.key_id), "e": int(session.expires_at), "c": session.csrf, "s": session.sid})
    payload = base64.urlsafe_b64encode(body).rstrip(b"=")
    return f"{payload.decode()}.{_mac(secret, payload)}"


def new(secret: bytes, key_id: uuid.UUID, *, now: float | None = None, ttl_s: float = SESSION_TTL_S) -> str:
    at = time.time() if now is None else now
    session = Session(
        key_id=key_id, expires_at=at + ttl_s, csrf=secrets.token_urlsafe(24), sid=secrets.token_urlsafe(24)
    )
    return encode(secret, session)


def decode(secret: bytes, cookie: str | None, *, now: float | None = None) -> Session:
    if not cookie:
        raise SessionError("signin")
    payload, _, mac = cookie.partition(".")
    # A cookie is whatever the client sent (any byte, as latin-1): compare bytes, never a str that may not be
    # ASCII (compare_digest refuses those with a TypeError).
    if not mac or not hmac.compare_digest(mac.encode("utf-8", "replace"), _mac(secret, payload.encode()).encode()):
        raise SessionError("invalid")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = Session(
            key_id=uuid.UUID(body["k"]), expires_at=float(body["e"]), csrf=str(body["c"]), sid=str(body["s"])
        )
    except (ValueError, KeyError, TypeError):
        raise SessionError("invalid") from None
    if not session.sid:
        raise SessionError("invalid")
    if session.expires_at <= (time.time() if now is None else now):
        raise SessionError("expired")
    return session


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf.encode(), submitted.encode())
