"""hume_request_seconds{operation,status}: every HTTP request our Hume clients make, timed at the transport,
so the SDK's own retries count one by one and a timeout or refused connection is counted too. The same place
paces requests against a shared rate budget (`Pace`), so an SDK retry spends the budget like any request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from app.core.metrics import HUME_BUDGET_WAIT_SECONDS, HUME_BUDGET_WAITS, HUME_REQUEST_SECONDS
from app.core.tls import client_context

Pace = Callable[[], Awaitable[float]]
"""Reserves one request of a rate budget; returns the seconds to wait before sending it."""


class TimedTransport(httpx.AsyncBaseTransport):
    """Times each request until its response headers (a streamed body, like TTS audio, is the caller's)."""

    def __init__(self, operation: str, pace: Pace | None = None) -> None:
        self.operation = operation
        self._pace = pace
        self._inner = httpx.AsyncHTTPTransport(verify=client_context())

    def _operation(self, request: httpx.Request) -> str:
        # EVI paths count as evi whichever SDK client sends them (EviClient has its own; the SDK is one package).
        return "evi" if request.url.path.startswith("/v0/evi/") else self.operation

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._pace is not None:
            wait = await self._pace()
            if wait > 0:
                HUME_BUDGET_WAITS.labels(self.operation).inc()
                HUME_BUDGET_WAIT_SECONDS.labels(self.operation).inc(wait)
                await asyncio.sleep(wait)
        started = time.perf_counter()
        status = "error"
        try:
            response = await self._inner.handle_async_request(request)
            status = str(response.status_code)
            return response
        except httpx.TimeoutException:
            status = "timeout"
            raise
        finally:
            HUME_REQUEST_SECONDS.labels(self._operation(request), status).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self._inner.aclose()


def timed_client(operation: str, *, timeout_s: float, pace: Pace | None = None) -> httpx.AsyncClient:
    """An httpx client for Hume whose requests are counted under `operation` (and paced by `pace`)."""
    return httpx.AsyncClient(timeout=timeout_s, transport=TimedTransport(operation, pace))
