"""A guarded POST of a small body (our outbound webhooks): no redirects followed, a bounded answer, a deadline.

On aiohttp, where media downloads use httpx (PinnedClient): an outbound webhook is one small POST, and
httpx's per-request Python (its URL, header and response models, anyio locks, pool bookkeeping) took
0.64 ms of CPU per POST against aiohttp's 0.12 ms, with four in flight to a local receiver. That was half of
a delivery attempt's CPU, and the worker's CPU is what bounds delivery throughput (bench_outbound).

The guard runs where a connection is made. Each request has its URL checked (scheme, host, and an IP
literal's address); a host name is resolved by the guard itself, through aiohttp's resolver hook, each time
a new connection opens (aiohttp's DNS cache is off). So every connection goes to an address the guard
approved, and nothing between the check and the connect can change it. A kept-alive connection goes on
serving its host after the host's DNS answer changes: the address it is connected to was checked. aiohttp
keys connections by host name, so a TLS session verified for one host never carries another's requests.

A URL is read by yarl, aiohttp's parser, and judged by the guard's rules (`url_rule`, `UrlGuard.addresses`)
both when a webhook endpoint or notify_url is registered (`checked_receiver`) and when it is delivered
(`GuardedPoster.post`): what registration accepts, delivery reads the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.core.tls import client_context
from app.egress.errors import BlockedUrl, FetchFailed
from app.egress.url_guard import UrlGuard, unparsable, url_rule


@dataclass(frozen=True)
class PostResponse:
    status: int
    headers: Mapping[str, str]
    """Case-insensitive names."""
    body: bytes
    """At most `max_response_bytes` of the answer; the rest is never read."""
    truncated: bool


_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_NUMERIC = socket.AI_NUMERICHOST


class _GuardResolver(AbstractResolver):
    """aiohttp asks this for a host name's addresses when it opens a connection: the guard resolves and judges."""

    def __init__(self, guard: UrlGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=str(ip), port=port, family=_FAMILY[ip.version], proto=0, flags=_NUMERIC)
            for ip in await self.guard.addresses(host, port)
        ]

    async def close(self) -> None:
        return None


def receiver_url(url: str) -> URL:
    """`url` as aiohttp will read it to deliver a webhook, if its parts pass the guard's URL rules (scheme,
    no credentials, a host aiohttp connects to as written, the port); else BlockedUrl naming the rule."""
    try:
        parsed = URL(url)
    # yarl's IDNA failures are UnicodeError, a ValueError; an empty bracketed host with credentials
    # ("http://[]@/hook") makes yarl's parser index past the end (IndexError).
    except (ValueError, TypeError, IndexError) as exc:
        raise unparsable(exc) from None
    rule = url_rule(
        parsed.scheme,
        credentials=parsed.raw_user is not None or parsed.raw_password is not None,
        host=parsed.raw_host or "",
        port=parsed.explicit_port,
    )
    if rule is not None:
        raise BlockedUrl(rule)
    return parsed


def _default_port(url: URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def checked_receiver(guard: UrlGuard, url: str) -> URL:
    """A webhook URL given as input (an endpoint, a notify_url): read as delivery will read it, its host
    resolved now and judged by the rules delivery applies to every connection. Raises BlockedUrl."""
    parsed = receiver_url(url)
    assert parsed.raw_host is not None  # receiver_url refuses a URL without one
    await guard.addresses(parsed.raw_host, _default_port(parsed))
    return parsed


def _where(url: URL) -> str:
    # Query strings often carry signatures: kept out of messages (and the stored attempts that hold them).
    return str(url.with_query(None).with_fragment(None))[:300]


class GuardedPoster:
    """The process's HTTP client for small guarded POSTs, with kept-alive connections per host."""

    def __init__(self, guard: UrlGuard, *, verify: ssl.SSLContext | None = None) -> None:
        self.guard = guard
        self._ssl = verify or client_context()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop that will drive it (aiohttp binds a session to its loop).
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=_GuardResolver(self.guard), use_dns_cache=False, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # One receiver's cookies never travel to the next; proxies from the environment are not used
                # (aiohttp's default, spelled out: a proxy would connect where the guard never looked).
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                # The answer's first bytes are stored as sent: a compressed answer is not inflated.
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _checked(self, url: str) -> URL:
        """The URL as aiohttp will use it, once its parts pass (the same parse is what connects)."""
        parsed = receiver_url(url)
        assert parsed.raw_host is not None  # receiver_url refuses a URL without one
        try:
            ipaddress.ip_address(parsed.raw_host)
        except ValueError:
            return parsed  # a name: the resolver judges its addresses when a connection opens
        # aiohttp connects to an IP literal without asking the resolver: judged here.
        await self.guard.addresses(parsed.raw_host, _default_port(parsed))
        return parsed

    async def post(
        self,
        url: str,
        content: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        max_response_bytes: int = 4096,
    ) -> PostResponse:
        """POST `content` to `url` and return the status with the first bytes of the answer.

        Any status is returned, 3xx included (a webhook receiver that redirects is not followed: the new
        address was never configured by anyone). Raises BlockedUrl, or FetchFailed on timeout/connection errors.
        """
        target = await self._checked(url)
        where = _where(target)
        try:
            async with asyncio.timeout(timeout_s):
                async with self._client().post(
                    target, data=content, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout()
                ) as response:
                    body = bytearray()
                    while len(body) <= max_response_bytes:
                        chunk = await response.content.read(max_response_bytes + 1 - len(body))
                        if not chunk:
                            break
                        body += chunk
                    # Leaving with the answer unread closes the connection instead of draining it.
                    return PostResponse(
                        status=response.status,
                        headers=response.headers,
                        body=bytes(body[:max_response_bytes]),
                        truncated=len(body) > max_response_bytes,
                    )
        except TimeoutError:
            raise FetchFailed(f"POST to {where} took longer than {timeout_s:g} s", kind="timeout") from None
        except aiohttp.InvalidURL as exc:  # a URL aiohttp refuses that receiver_url let through (none known)
            raise BlockedUrl(f"{where} is not a URL we call: {str(exc)[:200]}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchFailed(f"POST to {where} failed: {_connection_error(exc)}", kind="connection") from exc


def _connection_error(exc: Exception) -> str:
    """What went wrong, without the address a host name resolved to: aiohttp's connector errors quote it
    ("Connect call failed ('10.1.2.3', 443)"), and these messages are shown to whoever registered the URL."""
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(exc, aiohttp.ClientSSLError):
        errno = exc.os_error.errno
        reason = os.strerror(errno) if errno else type(exc.os_error).__name__
        return f"{type(exc).__name__} could not connect to {exc.host}:{exc.port} ({reason})"
    return f"{type(exc).__name__} {str(exc)[:200]}"


class Courier:
    """The process's one guarded HTTP client for outbound webhooks (`deps.courier`): its guard, its poster and
    the POSTs' deadline (WEBHOOK_TIMEOUT_S)."""

    def __init__(self, allow_private_hosts: str | None, *, timeout_s: float) -> None:
        self.guard = UrlGuard.from_setting(allow_private_hosts)
        self.timeout_s = timeout_s
        self.poster = GuardedPoster(self.guard)

    async def aclose(self) -> None:
        await self.poster.aclose()
