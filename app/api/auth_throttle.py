"""Throttling of failed authentication per client address: past AUTH_FAILURE_LIMIT wrong keys in
AUTH_FAILURE_WINDOW_S, an address gets 429 with Retry-After, before its key is looked up.

Kept in each process's memory, not in Postgres: under attack every failure would otherwise be a write to the
database the attack already loads, and a client that is not failing must cost nothing (one dict lookup that
misses). So the limit is per process: with WEB_CONCURRENCY=N an address gets at most N times the limit
before every process refuses it.

Each address has a token bucket of AUTH_FAILURE_LIMIT failures that refills over the window, so a client that
keeps failing is held to the window's average rate (30 a minute: one every 2 s) and one that stops is free
again within a window. An address that has failed before takes a token as each attempt is admitted, not when
its lookup fails: otherwise every attempt in flight when a token came back would pass on that one token (with
20 connections, up to 20 lookups a regained token, seen in CI as 62 wrong keys looked up where 30 were due);
a success gives its token back. IPv6 clients are counted per /64 (the block one host is usually given). A key that
succeeded in this process passes even from a throttled address (its hash is remembered), so clients that
share an address with an attacker (NAT, a proxy) keep working; its next failure forgets it.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from typing import NamedTuple

from starlette.requests import Request

from app.errors import AppError

_MAX_CLIENTS = 100_000
"""Addresses followed at once (about 100 bytes each); the one that failed longest ago is forgotten first."""
_MAX_GOOD_KEYS = 10_000


class TooManyFailures(AppError):
    """Too many failed authentications from this address."""

    status = 429
    code = "too_many_auth_failures"

    def __init__(self, wait_s: int) -> None:
        super().__init__(
            f"too many failed authentications from this address; retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )


class Admission(NamedTuple):
    wait_s: int
    """0: go ahead; else the whole seconds until this client may try a key again."""
    held: bool
    """The attempt holds one of the client's tokens: its failure spends it, its success gives it back."""


class FailureThrottle:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.rate = limit / window_s  # failures regained per second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._good: dict[str, None] = {}  # hashes of keys that succeeded here, oldest first

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets[client]
        return min(float(self.limit), tokens + (now - at) * self.rate)

    def admit(self, client: str, key_hash: str | None = None, *, now: float | None = None) -> Admission:
        """Whether this client may try a key now. A client that never failed (or a key that worked here) costs
        nothing; one that failed before takes a token for the attempt, or waits for one."""
        if self.limit == 0 or client not in self._buckets or (key_hash is not None and key_hash in self._good):
            return Admission(0, held=False)
        at = time.monotonic() if now is None else now
        tokens = self._tokens(client, at)
        if tokens < 1:
            return Admission(max(1, math.ceil((1 - tokens) / self.rate)), held=False)
        self._buckets[client] = (tokens - 1, at)
        return Admission(0, held=True)

    def failed(self, client: str, key_hash: str | None = None, *, held: bool = False, now: float | None = None) -> None:
        """A wrong key from `client`: it spends a token, unless its admission already took one (`held`)."""
        if self.limit == 0:
            return
        at = time.monotonic() if now is None else now
        tokens = self._tokens(client, at) if client in self._buckets else float(self.limit)
        self._buckets[client] = (tokens if held else max(0.0, tokens - 1), at)
        self._buckets.move_to_end(client)
        if len(self._buckets) > _MAX_CLIENTS:
            self._buckets.popitem(last=False)
        if key_hash is not None:
            self._good.pop(key_hash, None)

    def succeeded(self, key_hash: str, client: str | None = None, *, held: bool = False) -> None:
        """A key that worked: it passes from now on, and the token its admission took (`held`) is given back."""
        if self.limit == 0:
            return
        if held and client is not None and client in self._buckets:
            tokens, at = self._buckets[client]
            self._buckets[client] = (min(float(self.limit), tokens + 1), at)
        if key_hash in self._good:
            return
        self._good[key_hash] = None
        if len(self._good) > _MAX_GOOD_KEYS:
            del self._good[next(iter(self._good))]


def client_of(request: Request) -> str:
    """The client's address as uvicorn gives it (the proxy's X-Forwarded-For only when the proxy is in
    FORWARDED_ALLOW_IPS), an IPv6 address as its /64."""
    host = request.client.host if request.client else ""
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def for_app(request: Request) -> FailureThrottle:
    """The application's throttle (one per app, so two services in one test process never share one)."""
    throttle = getattr(request.app.state, "auth_throttle", None)
    if throttle is None:
        settings = request.state.deps.settings
        throttle = FailureThrottle(settings.auth_failure_limit, settings.auth_failure_window_s)
        request.app.state.auth_throttle = throttle
    assert isinstance(throttle, FailureThrottle)
    return throttle
