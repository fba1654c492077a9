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
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.egress.errors import BlockedUrl, FetchFailed
from app.egress.url_guard import UrlGuard
from app.tls import client_context


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
        """The URL as aiohttp will use it, once its scheme and host pass (the same parse is what connects)."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise BlockedUrl(f"{url[:200]!r} is not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise BlockedUrl(f"only http and https URLs can be fetched, not {parsed.scheme or 'a relative'} URLs")
        if not parsed.raw_host:
            raise BlockedUrl(f"{url[:200]} has no host")
        try:
            ipaddress.ip_address(parsed.raw_host)
        except ValueError:
            return parsed  # a name: the resolver judges its addresses when a connection opens
        # aiohttp connects to an IP literal without asking the resolver: judged here.
        await self.guard.addresses(parsed.raw_host, parsed.port or 0)
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
        where = url.split("?", 1)[0][:300]  # query strings often carry signatures: kept out of messages
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
        except aiohttp.InvalidURL as exc:  # e.g. a legacy numeric IPv4 form (2130706433), which aiohttp refuses
            raise BlockedUrl(f"{where} is not a URL we call: {str(exc)[:200]}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchFailed(
                f"POST to {where} failed: {type(exc).__name__} {str(exc)[:200]}", kind="connection"
            ) from exc
