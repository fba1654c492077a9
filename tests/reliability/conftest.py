"""Fixtures of the fault tests."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import app


@pytest.fixture(scope="session")
def every_app_module_imported() -> None:
    """Import all of `app` before a hypothesis test starts drawing.

    hypothesis mixes constants read from every loaded module of ours into what it generates, and reads
    again whenever the module count changes. The service runs in a thread of the test process and imports
    some modules on first use, so mid-test the constants changed under hypothesis, which then failed the
    test as FlakyStrategyDefinition (seen when this test was the first its xdist process ran).
    """
    for module in pkgutil.walk_packages(app.__path__, prefix="app."):
        if not module.name.endswith(".__main__"):  # that one runs the CLI
            importlib.import_module(module.name)
