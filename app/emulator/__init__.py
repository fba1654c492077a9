"""Hume emulator: an offline, faithful stand-in for Hume AI's HTTP API.

Imports nothing from the rest of ``app``, so it can run on its own.
"""

from __future__ import annotations

from .cli import main
from .config import EmulatorConfig
from .server import create_app

__all__ = ["EmulatorConfig", "create_app", "main"]
