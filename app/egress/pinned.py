"""One HTTP request to an address the guard checked: the connection goes to that IP, not to a fresh lookup.

How: the request URL carries the checked IP literal, the Host header the original host[:port], and httpcore's
`sni_hostname` extension the original host, so TLS still sends SNI and verifies the certificate against the
hostname. httpx never resolves the name itself, so there is no window for a DNS answer to change.
Connections are kept alive per (scheme, hostname, checked IP, port), each key with its own httpx pool:
httpcore pools by IP, so one shared pool would send host B's requests over a TLS session verified for host A
on the same IP. A pool that only ever serves one hostname cannot. Every request is still checked by the
guard first (a fresh resolution), and only then picks the pool of the address the check returned.

Requests go to httpx's transport directly: nothing here wants what the client layer adds on every request
(cookie jars carried from one stranger's server to the next, auth, redirects, URL and header merging).
Media downloads use this client; outbound webhooks use GuardedPoster (post.py), whose per-request CPU counts.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import httpx

from app.core.tls import client_context
from app.egress.errors import FetchFailed
from app.egress.url_guard import IPAddress, Target, UrlGuard

_PoolKey = tuple[str, str, IPAddress, int]
USER_AGENT = "hume-expression-service"


def _describe(url: httpx.URL) -> str:
    # Query strings often carry signatures (pre-signed URLs): keep them out of messages and logs.
    return str(url.copy_with(query=None, fragment=None))[:300]


def transport_error(url: httpx.URL, exc: httpx.TransportError) -> FetchFailed:
    where = _describe(url)
    if isinstance(exc, httpx.TimeoutException):
        return FetchFailed(f"{where} timed out ({type(exc).__name__})", kind="timeout")
    return FetchFailed(f"{where} could not be fetched: {type(exc).__name__} {str(exc)[:200]}", kind="connection")


def _request_headers(headers: Mapping[str, str] | None, host: str) -> httpx.Headers:
    """The caller's headers (names case-insensitive) over our User-Agent, with the Host we decide."""
    merged = httpx.Headers({"User-Agent": USER_AGENT})
    merged.update(headers or {})
    merged["Host"] = host
    return merged


class PinnedClient:
    """An httpx client that only talks to guarded, pinned addresses. Use as an async context manager."""

    def __init__(
        self,
        guard: UrlGuard,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        max_pools: int = 64,
    ) -> None:
        self.guard = guard
        self.max_pools = max_pools
        # One context for every pool (and, by default, the process's shared one): building one loads the CA store.
        if isinstance(verify, ssl.SSLContext):
            self._ssl = verify
        else:
            self._ssl = client_context() if verify else httpx.create_ssl_context(verify=False)
        self._timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s, pool=None)
        self._pools: OrderedDict[_PoolKey, httpx.AsyncHTTPTransport] = OrderedDict()
        self._in_use: dict[_PoolKey, int] = {}

    def _pool(self, key: _PoolKey) -> httpx.AsyncHTTPTransport:
        transport = self._pools.get(key)
        if transport is not None:
            self._pools.move_to_end(key)
            return transport
        # A transport never reads HTTP(S)_PROXY (a proxy from the environment would connect unguarded).
        transport = httpx.AsyncHTTPTransport(verify=self._ssl, trust_env=False)
        self._pools[key] = transport
        return transport

    async def _evict(self) -> None:
        """Close the least recently used idle pools beyond `max_pools` (a pool with a request in flight stays)."""
        idle = [key for key in self._pools if not self._in_use.get(key)]
        for key in idle[: max(0, len(self._pools) - self.max_pools)]:
            await self._pools.pop(key).aclose()

    async def __aenter__(self) -> PinnedClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for client in pools:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def open(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeouts: httpx.Timeout | None = None,
    ) -> AsyncIterator[tuple[httpx.Response, Target]]:
        """Check `url`, connect to its checked address(es) in order, and yield the streamed response."""
        target = await self.guard.check(url)
        response: httpx.Response | None = None
        last_error: httpx.TransportError | None = None
        key: _PoolKey | None = None
        for ip in target.addresses:
            key = (target.url.scheme, target.host, ip, target.port)
            transport = self._pool(key)
            request = httpx.Request(
                method,
                target.url.copy_with(host=str(ip)),
                headers=_request_headers(headers, target.url.netloc.decode("ascii")),
                content=content,
                extensions={
                    "sni_hostname": target.host,
                    "timeout": (timeouts if timeouts is not None else self._timeout).as_dict(),
                },
            )
            self._in_use[key] = self._in_use.get(key, 0) + 1
            try:
                response = await transport.handle_async_request(request)
                response.request = request
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc  # the next address of the same host may answer
            except httpx.TransportError as exc:
                raise transport_error(target.url, exc) from exc
            finally:
                if response is None:
                    self._release(key)
        if response is None:
            assert last_error is not None
            raise transport_error(target.url, last_error) from last_error
        assert key is not None
        try:
            yield response, target
        except httpx.TransportError as exc:
            raise transport_error(target.url, exc) from exc
        finally:
            # Closing before the body is read to its end drops the connection instead of pooling it.
            await response.aclose()
            self._release(key)
            if len(self._pools) > self.max_pools:
                await self._evict()

    def _release(self, key: _PoolKey) -> None:
        left = self._in_use.get(key, 0) - 1
        if left > 0:
            self._in_use[key] = left
        else:
            self._in_use.pop(key, None)
