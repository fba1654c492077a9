"""EVI webhook signing, exactly as Hume does it (HUME.md 2.2).

HMAC-SHA256 over ``raw_body + "." + timestamp`` (timestamp in Unix seconds, as a string), hex
digest in ``X-Hume-AI-Webhook-Signature``, the timestamp in ``X-Hume-AI-Webhook-Timestamp``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Hume-AI-Webhook-Signature"
TIMESTAMP_HEADER = "X-Hume-AI-Webhook-Timestamp"


def sign(body: bytes, timestamp: str, key: str) -> str:
    message = body + b"." + timestamp.encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, key: str, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {SIGNATURE_HEADER: sign(body, timestamp, key), TIMESTAMP_HEADER: timestamp}
