"""A uvicorn server run as a task of the current event loop while a block runs (the built-in emulator,
a worker's metrics endpoint)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import uvicorn


@contextlib.asynccontextmanager
async def running(server: uvicorn.Server, cannot_listen: Callable[[], Exception]) -> AsyncIterator[None]:
    """Serve until the block ends; raises `cannot_listen()` when the server stops before it listens."""
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise cannot_listen()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
