"""The long-lived resources every feature needs, built once by `app.wiring.build_deps`.

Feature-owned, per-process services (the TTS cache's in-flight table, the inbox pipeline's handler
registry) are kept by type in `services`, so this core module never imports a feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import Unavailable
from app.hume.gateway import HumeGateway
from app.hume.token_client import TokenProvider

T = TypeVar("T")


@dataclass(frozen=True)
class Deps:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    gateway: HumeGateway
    queue: procrastinate.App
    tokens: TokenProvider | None = None
    """None when no Hume secret key is configured (then /api/hume/auth answers 503)."""
    services: dict[type, object] = field(default_factory=dict)

    def get(self, kind: type[T]) -> T:
        """The process's one instance of a feature service; 503 when this process was built without it."""
        service = self.services.get(kind)
        if service is None:
            raise Unavailable(f"{kind.__name__} is not configured on this server")
        assert isinstance(service, kind)
        return service

    def find(self, kind: type[T]) -> T | None:
        service = self.services.get(kind)
        assert service is None or isinstance(service, kind)
        return service
