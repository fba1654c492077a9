"""A headless Chromium from the system (Debian's `chromium`), driven by Playwright; never a downloaded browser.

Without the browser or the playwright package the browser tests skip, saying which is missing.
Playwright's sync API keeps an event loop running in the test's thread, so the browser starts per test,
after the service (whose fixtures use asyncio.run), and tests make keys with `sync_key`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.store import api_keys
from tests.conftest import Service

OUTPUT = Path(__file__).resolve().parents[1] / "output"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run",
]  # fmt: skip


def sync_key(database_url: str, scopes: list[str], name: str = "browser-test") -> str:
    """A new API key, stored without asyncio (see the module's note)."""
    key = api_keys.new_key()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO api_key (id, name, key_hash, scopes) VALUES (%s, %s, %s, %s)",
            (uuid.uuid4(), name, api_keys.hash_key(key), scopes),
        )
    return key


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system browser's path; checked before any service starts, so a skip costs nothing."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("no `chromium` on PATH: install Debian's chromium package (.ci/run does) to run browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (it is in the dev extra: make install)")
    return executable


@pytest.fixture
def browser(chromium: str, service: Service) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
