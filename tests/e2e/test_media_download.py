"""Media download over real sockets: guarded redirects, pinned addresses, size and time limits, TLS by hostname."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from app.egress.download import FetchLimits, download
from app.egress.errors import BlockedUrl, FetchFailed, MediaTooLarge
from app.egress.pinned import PinnedClient
from app.egress.url_guard import Resolver, UrlGuard
from tests.asgi_server import serve


async def _bytes(n: int, *, stall_after: int | None = None) -> AsyncIterator[bytes]:
    sent = 0
    while sent < n:
        if stall_after is not None and sent >= stall_after:
            await asyncio.sleep(5)
        piece = min(65536, n - sent)
        yield b"m" * piece
        sent += piece


async def media(request: Request) -> Response:
    return StreamingResponse(_bytes(int(request.path_params["n"])), media_type="video/mp4")


async def hop(request: Request) -> Response:
    k = int(request.path_params["k"])
    return RedirectResponse(f"/hop/{k - 1}" if k > 0 else "/media/1000", status_code=302)


async def to(request: Request) -> Response:
    return RedirectResponse(request.query_params["url"], status_code=307)


async def lying(request: Request) -> Response:
    return StreamingResponse(_bytes(1 << 20), headers={"content-length": "100"})


async def declared_huge(request: Request) -> Response:
    return StreamingResponse(_bytes(10), headers={"content-length": str(10**12)})


async def stall(request: Request) -> Response:
    return StreamingResponse(_bytes(100_000, stall_after=65536))


async def host(request: Request) -> Response:
    return PlainTextResponse(request.headers["host"])


APP = Starlette(
    routes=[
        Route("/media/{n:int}", media),
        Route("/hop/{k:int}", hop),
        Route("/to", to),
        Route("/lying", lying),
        Route("/declared-huge", declared_huge),
        Route("/stall", stall),
        Route("/host", host),
    ]
)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve(APP) as p:
        yield p


def resolver_for(answers: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    return resolve


LOOPBACK_OK = UrlGuard.from_setting("127.0.0.1")
LIMITS = FetchLimits(max_bytes=1 << 20, connect_timeout_s=2, read_timeout_s=0.5, total_timeout_s=10)


async def test_download_streams_to_a_temporary_file_removed_afterwards(port: int) -> None:
    async with (
        PinnedClient(LOOPBACK_OK) as client,
        download(client, f"http://127.0.0.1:{port}/media/300000", LIMITS) as got,
    ):
        assert got.size == 300_000
        assert got.path.read_bytes() == b"m" * 300_000
        assert got.content_type == "video/mp4"
    assert not got.path.exists()


async def test_redirects_are_followed_up_to_five(port: int) -> None:
    async with PinnedClient(LOOPBACK_OK) as client:
        async with download(client, f"http://127.0.0.1:{port}/hop/4", LIMITS) as got:
            assert got.size == 1000
            assert got.url.endswith("/media/1000")
        with pytest.raises(FetchFailed, match="redirected more than 5 times") as caught:
            async with download(client, f"http://127.0.0.1:{port}/hop/5", LIMITS):
                pass
        assert caught.value.kind == "redirects"


async def test_a_redirect_into_a_private_address_is_refused(port: int) -> None:
    """The first hop is allowed (by host name); its redirect to loopback and to the metadata address is not."""
    guard = UrlGuard.from_setting("media.test", resolver=resolver_for({"media.test": ["127.0.0.1"]}))
    async with PinnedClient(guard) as client:
        for target in (f"http://127.0.0.1:{port}/media/10", "http://169.254.169.254/latest/meta-data/"):
            with pytest.raises(BlockedUrl, match="ALLOW_PRIVATE_HOSTS"):
                async with download(client, f"http://media.test:{port}/to?url={target}", LIMITS):
                    pass


async def test_the_checked_address_is_the_one_connected_to(port: int) -> None:
    """One resolution per hop, and its answer is used: a rebinding resolver's second answer is never asked for,
    and the name (unknown to the system resolver) reaches the server only as the Host header."""
    calls: list[str] = []
    guard = UrlGuard.from_setting("127.0.0.1", resolver=resolver_for({"media.test": ["127.0.0.1"]}, calls))
    async with PinnedClient(guard) as client, download(client, f"http://media.test:{port}/host", LIMITS) as got:
        assert got.path.read_text() == f"media.test:{port}"
    assert calls == ["media.test"]


async def test_body_over_the_limit_is_refused_while_streaming(port: int) -> None:
    async with PinnedClient(LOOPBACK_OK) as client:
        with pytest.raises(MediaTooLarge, match=r"larger than the 1048576 byte limit \(MEDIA_MAX_BYTES\)"):
            async with download(client, f"http://127.0.0.1:{port}/media/2000000", LIMITS):
                pass
        with pytest.raises(MediaTooLarge):
            async with download(client, f"http://127.0.0.1:{port}/declared-huge", LIMITS):
                pass


async def test_a_lying_content_length_cannot_push_more_bytes_into_the_file(port: int) -> None:
    """The server declares 100 bytes and sends 1 MiB: no more than what was declared is ever stored."""
    async with PinnedClient(LOOPBACK_OK) as client:
        try:
            async with download(client, f"http://127.0.0.1:{port}/lying", LIMITS) as got:
                assert got.size == 100
        except FetchFailed as exc:
            assert exc.kind == "connection"


async def test_a_server_stalling_mid_body_times_out(port: int) -> None:
    async with PinnedClient(LOOPBACK_OK) as client:
        with pytest.raises(FetchFailed, match="timed out") as caught:
            async with download(client, f"http://127.0.0.1:{port}/stall", LIMITS):
                pass
    assert caught.value.kind == "timeout"


async def test_the_total_deadline_bounds_a_slow_trickle(port: int) -> None:
    limits = FetchLimits(max_bytes=1 << 20, read_timeout_s=10, total_timeout_s=0.5)
    async with PinnedClient(LOOPBACK_OK) as client:
        with pytest.raises(FetchFailed, match=r"took longer than 0.5 s"):
            async with download(client, f"http://127.0.0.1:{port}/stall", limits):
                pass


async def test_an_error_status_is_named(port: int) -> None:
    async with PinnedClient(LOOPBACK_OK) as client:
        with pytest.raises(FetchFailed, match=r"answered HTTP 404 Not Found") as caught:
            async with download(client, f"http://127.0.0.1:{port}/nothing-here?sig=secret", LIMITS):
                pass
    assert caught.value.status == 404
    assert "secret" not in caught.value.message


async def test_connection_refused_is_a_fetch_failure() -> None:
    async with PinnedClient(LOOPBACK_OK) as client:
        with pytest.raises(FetchFailed) as caught:
            async with download(client, "http://127.0.0.1:9/x.mp4", LIMITS):
                pass
    assert caught.value.kind == "connection"


async def test_tls_to_a_pinned_address_verifies_the_hostname(tls_files: tuple[Path, Path]) -> None:
    """Connecting by IP still sends SNI and checks the certificate against the URL's host name."""
    cert, key = tls_files
    trust = ssl.create_default_context(cafile=str(cert))
    names = {"media.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
    guard = UrlGuard.from_setting("127.0.0.1", resolver=resolver_for(names))
    with serve(APP, certfile=str(cert), keyfile=str(key)) as tls_port:
        async with PinnedClient(guard, verify=trust) as client:
            async with download(client, f"https://media.test:{tls_port}/host", LIMITS) as got:
                assert got.path.read_text() == f"media.test:{tls_port}"
            with pytest.raises(FetchFailed, match="could not be fetched") as caught:
                async with download(client, f"https://other.test:{tls_port}/host", LIMITS):
                    pass
            assert caught.value.kind == "connection"
