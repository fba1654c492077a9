"""One HTTP request to an address the guard checked: the connection goes to that IP, not to a fresh lookup.

How: the request URL carries the checked IP literal, the Host header the original host[:port], and httpcore's
`sni_hostname` extension the original host, so TLS still sends SNI and verifies the certificate against the
hostname. httpx never resolves the name itself, so there is no window for a DNS answer to change.
Connections are not kept alive: a pooled TLS connection is keyed by IP, and reusing it for another hostname
on the same IP would send that host's requests over a session verified for the first.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import httpx

from app.egress.errors import FetchFailed
from app.egress.url_guard import Target, UrlGuard


def _describe(url: httpx.URL) -> str:
    # Query strings often carry signatures (pre-signed URLs): keep them out of messages and logs.
    return str(url.copy_with(query=None, fragment=None))[:300]


def transport_error(url: httpx.URL, exc: httpx.TransportError) -> FetchFailed:
    where = _describe(url)
    if isinstance(exc, httpx.TimeoutException):
        return FetchFailed(f"{where} timed out ({type(exc).__name__})", kind="timeout")
    return FetchFailed(f"{where} could not be fetched: {type(exc).__name__} {str(exc)[:200]}", kind="connection")


def _without_host(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (headers or {}).items() if k.lower() != "host"}


class PinnedClient:
    """An httpx client that only talks to guarded, pinned addresses. Use as an async context manager."""

    def __init__(
        self,
        guard: UrlGuard,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.guard = guard
        self._client = httpx.AsyncClient(
            # trust_env=False: an HTTP(S)_PROXY from the environment would connect on our behalf, unguarded.
            trust_env=False,
            follow_redirects=False,
            verify=verify,
            timeout=httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s, pool=None),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def __aenter__(self) -> PinnedClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

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
        for ip in target.addresses:
            request = self._client.build_request(
                method,
                target.url.copy_with(host=str(ip)),
                headers={**_without_host(headers), "Host": target.url.netloc.decode("ascii")},
                content=content,
                extensions={"sni_hostname": target.host},
                timeout=timeouts if timeouts is not None else self._client.timeout,
            )
            try:
                response = await self._client.send(request, stream=True)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc  # the next address of the same host may answer
            except httpx.TransportError as exc:
                raise transport_error(target.url, exc) from exc
        if response is None:
            assert last_error is not None
            raise transport_error(target.url, last_error) from last_error
        try:
            yield response, target
        except httpx.TransportError as exc:
            raise transport_error(target.url, exc) from exc
        finally:
            await response.aclose()
