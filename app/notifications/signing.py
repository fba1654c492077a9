"""Standard Webhooks signing: `whsec_` secrets, and the three headers of one attempt (one signature per
active secret, so receivers still holding the old secret keep verifying during a rotation)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from standardwebhooks.webhooks import Webhook

from app.store.webhook_endpoints import new_secret as new_secret  # made where endpoints are stored


class Signer:
    """The signing keys of one endpoint, decoded once for every message of a batch."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._hooks = [Webhook(key) for key in keys]

    def headers(self, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
        """webhook-id, webhook-timestamp and webhook-signature (space-separated `v1,<base64>` per key)."""
        text = body.decode("utf-8")
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(hook.sign(msg_id=msg_id, timestamp=at, data=text) for hook in self._hooks),
            "content-type": "application/json",
            "user-agent": "hume-expression-service-webhooks/1",
        }


def headers(keys: Iterable[str], msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """One message's headers (Signer.headers)."""
    return Signer(keys).headers(msg_id, at, body)
