"""EVI chats (placeholder until implemented)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.routing import BaseRoute

from .state import EmulatorState


@dataclass
class Chat:
    id: str


def seed_chats(state: EmulatorState) -> None:
    return None


routes: list[BaseRoute] = []
