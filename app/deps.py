"""The long-lived resources every feature needs, built once by `app.wiring.build_deps`, and the inbox
pipeline's registry (`Pipeline`) that the wiring fills with the features' parts.

Every resource is a typed field, required by the constructor: a service the wiring forgets is a TypeError
when the process starts (and a mypy error before that), never a 503 at request time. The registry is
defined here, not in app.inbox, because it and `Deps` name each other (a handler takes the deps, the deps
hold the registry): one module keeps the imports one way. The feature-owned services (the TTS service with
its in-flight table, the live sessions' flusher) are typed with imports under TYPE_CHECKING only: this module
never imports a feature, so the layers hold, and the wiring, which does import the features, is checked
against these types.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.egress.post import Courier
from app.egress.url_guard import UrlGuard
from app.hume.decisions import DecisionsClient
from app.hume.evi_chats import EviClient
from app.hume.expression_client import ExpressionClient
from app.hume.gateway import HumeGateway
from app.hume.realtime_client import RealtimeClient
from app.hume.token_client import TokenProvider
from app.store.db import Database
from app.store.tables import InboxEvent
from app.store.webhook_intake import WebhookIntake

if TYPE_CHECKING:
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


# --- The inbox pipeline's registry ------------------------------------------------------------------------
# What processes each provider's events, what starts each backend's jobs, and what the reconciler checks.
# Features register here (through `app.wiring`); the task runner, replay and the reconciler only ever look
# things up, so a new provider or backend plugs in without touching them.

EventHandler = Callable[[Deps, InboxEvent], Awaitable[str]]
"""Applies one stored event; returns what happened (for logs). It ends the event itself, with
`inbox_events.finish`, in the same transaction as its effect; raising leaves it for a retry."""

QueueTask = Callable[..., Awaitable[None]]
"""A feature's own queue task, called as `task(deps, **arguments)`; the queue retries it (with the
worker's backoff) only when it raises, e.g. while the database is away."""

Check = Callable[[Deps], Awaitable[int]]
"""A reconciler check; returns how many things it looked at."""


@dataclass(frozen=True)
class JobBackend:
    """How a job of one backend starts; `give_up` ends it when every try failed transiently."""

    start: Callable[[Deps, uuid.UUID], Awaitable[None]]
    give_up: Callable[[Deps, uuid.UUID, str], Awaitable[None]]


@dataclass
class Pipeline:
    handlers: dict[str, EventHandler] = field(default_factory=dict)
    """By provider (the inbox row's `provider`): hume_batch, poll, hume_evi, evi_backfill, ..."""
    backends: dict[str, JobBackend] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    tasks: dict[str, QueueTask] = field(default_factory=dict)
    """Further queue tasks by name (registered on the queue when it is built)."""
    permanent: tuple[type[BaseException], ...] = ()
    """Errors retrying cannot fix: the event goes dead at once (an operator can replay it after a fix)."""

    def handle(self, providers: tuple[str, ...], handler: EventHandler) -> None:
        for provider in providers:
            self.handlers[provider] = handler
