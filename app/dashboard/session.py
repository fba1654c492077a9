"""Dashboard sessions: a signed cookie naming the API key's id (never the key), with expiry and a CSRF nonce.

The cookie is `base64(json).hex(hmac-sha256)`. The secret comes from DASHBOARD_SECRET; without it a random
secret is drawn per process, so sessions end when the service restarts (fine for `make run`, not for
several replicas, which must share DASHBOARD_SECRET). Every request re-reads the key from the store, so a
revoked key (or one that lost the read scope) ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson

COOKIE = "dashboard_session"
SESSION_TTL_S = 8 * 3600
"""A working day; signing in again costs one paste of the key."""
SECRET_ENV = "DASHBOARD_SECRET"  # noqa: S105  # the variable's name, not a secret


def secret_from_env() -> bytes:
    configured = os.environ.get(SECRET_ENV, "").strip()
    return configured.encode() if configured else secrets.token_bytes(32)


@dataclass(frozen=True)
class Session:
    key_id: uuid.UUID
    expires_at: float
    csrf: str


class SessionError(Exception):
    """The cookie is missing, tampered with or expired; the message says which, for the sign-in page."""


def _mac(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def encode(secret: bytes, session: Session) -> str:
    body = orjson.dumps({"k": str(session.key_id), "e": int(session.expires_at), "c": session.csrf})
    payload = base64.urlsafe_b64encode(body).rstrip(b"=")
    return f"{payload.decode()}.{_mac(secret, payload)}"


def new(secret: bytes, key_id: uuid.UUID, *, now: float | None = None, ttl_s: float = SESSION_TTL_S) -> str:
    at = time.time() if now is None else now
    return encode(secret, Session(key_id=key_id, expires_at=at + ttl_s, csrf=secrets.token_urlsafe(24)))


def decode(secret: bytes, cookie: str | None, *, now: float | None = None) -> Session:
    if not cookie:
        raise SessionError("Please sign in.")
    payload, _, mac = cookie.partition(".")
    if not mac or not hmac.compare_digest(mac, _mac(secret, payload.encode())):
        raise SessionError("Your session is not valid (it was changed or made by another server). Please sign in.")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = Session(key_id=uuid.UUID(body["k"]), expires_at=float(body["e"]), csrf=str(body["c"]))
    except (ValueError, KeyError, TypeError):
        raise SessionError("Your session is not valid. Please sign in.") from None
    if session.expires_at <= (time.time() if now is None else now):
        raise SessionError("Your session has expired. Please sign in again.")
    return session


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf.encode(), submitted.encode())
