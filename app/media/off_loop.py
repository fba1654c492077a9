"""Decoding off the event loop: a media generator's next item taken in a worker thread (PyAV releases the GIL
while it decodes), so one decode does not stall every request and task of the process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def next_item(items: Iterator[T]) -> T | None:
    """The next item of `items`, decoded in a thread; None when it is exhausted."""
    pending = asyncio.ensure_future(asyncio.to_thread(next, items, _END))
    try:
        item = await asyncio.shield(pending)
    except asyncio.CancelledError:
        # A decoding thread cannot be interrupted: let it finish, so the generator can then be closed.
        with contextlib.suppress(Exception):
            await pending
        raise
    return None if item is _END else item  # type: ignore[return-value]
