"""The long-lived resources every service function needs, built once by the app's lifespan or the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.hume.gateway import HumeGateway
from app.hume.tokens import TokenProvider
from app.store.db import driver_connection
from app.tts import TtsService


@dataclass(frozen=True)
class Deps:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    gateway: HumeGateway
    queue: procrastinate.App
    tokens: TokenProvider | None = None
    """None when no Hume secret key is configured (then /api/hume/auth answers 503)."""
    tts: TtsService | None = None


async def defer(session: AsyncSession, queue: procrastinate.App, task: str, **kwargs: Any) -> None:
    """Enqueue on the session's own connection: the task exists if and only if the transaction commits."""
    connection = await driver_connection(session)
    await queue.configure_task(task, connection=connection).defer_async(**kwargs)
