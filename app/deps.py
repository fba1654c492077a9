"""The long-lived resources every feature needs, built once by `app.wiring.build_deps`.

Every resource is a typed field, required by the constructor: a service the wiring forgets is a TypeError
when the process starts (and a mypy error before that), never a 503 at request time. The feature-owned
services (the inbox pipeline's registry, the TTS service with its in-flight table, the outbound-webhook
courier) are typed with imports under TYPE_CHECKING only, which import-linter ignores
(`exclude_type_checking_imports`): this module never imports a feature at run time, so the layers hold,
and the wiring, which does import the features, is checked against these types.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.egress.url_guard import UrlGuard
from app.hume.decisions import DecisionsClient
from app.hume.evi_chats import EviClient
from app.hume.expression_client import ExpressionClient
from app.hume.gateway import HumeGateway
from app.hume.realtime_client import RealtimeClient
from app.hume.token_client import TokenProvider
from app.store.db import Database
from app.store.webhook_intake import WebhookIntake

if TYPE_CHECKING:
    from app.inbox.pipeline import Pipeline
    from app.notifications.delivery import Courier
    from app.sessions.flusher import LiveFlusher
    from app.tts.service import TtsService


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: Database
    """The sessionmaker and the small autocommit pool (`db.connection()`)."""
    intake: WebhookIntake
    """Webhook acknowledgements' batched writes, on `db`'s autocommit pool."""
    queue: procrastinate.App
    pipeline: Pipeline
    """What processes each provider's events, starts each backend's jobs and what the reconciler checks."""
    gateway: HumeGateway
    """Hume's batch API."""
    expression: ExpressionClient
    """Hume's Expression Measurement v1."""
    decisions: DecisionsClient
    """Hume's Audio Decisions (the cloud host, the same request budget as v1)."""
    realtime: RealtimeClient
    """Hume's v1 realtime sessions (the live-session relay's upstream)."""
    evi: EviClient
    tts: TtsService
    courier: Courier
    url_guard: UrlGuard
    """Checks notify_url at submit, as the courier will at delivery (the courier's own guard)."""
    decode_slots: asyncio.Semaphore
    """The process's media decode slots (MEDIA_DECODE_CONCURRENCY), held for a medium's whole decode."""
    live: LiveFlusher
    """Stores the process's live sessions' measurements, all sessions in one transaction a tick."""
    tokens: TokenProvider | None = None
    """None when no Hume secret key is configured (then /api/hume/auth answers 503)."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.db.sessionmaker
