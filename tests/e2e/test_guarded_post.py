"""The guarded POST for outbound webhooks: guard applied at every connection, redirects not followed, answers
read only in part, compressed answers stored as sent."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from app.egress.errors import BlockedUrl, FetchFailed
from app.egress.post import GuardedPoster
from app.egress.url_guard import UrlGuard
from tests.asgi_server import serve


async def hook(request: Request) -> Response:
    body = await request.body()
    return Response(f"got {len(body)} {request.headers['content-type']}", status_code=202)


async def peer(request: Request) -> Response:
    assert request.client is not None
    return Response(f"{request.headers['host']} {request.client.port}")


async def moved(request: Request) -> Response:
    return RedirectResponse("http://169.254.169.254/", status_code=307)


async def slowpeer(request: Request) -> Response:
    await asyncio.sleep(0.3)
    return await peer(request)


async def gzipped(request: Request) -> Response:
    return Response(gzip.compress(b"hello"), headers={"content-encoding": "gzip"})


async def cookie(request: Request) -> Response:
    response = Response("set")
    response.set_cookie("session", "secret-of-receiver-one")
    return response


async def echo_headers(request: Request) -> Response:
    return Response(orjson.dumps(dict(request.headers)))


async def endless() -> AsyncIterator[bytes]:
    for _ in range(10_000):
        yield b"x" * 65536


async def huge(request: Request) -> Response:
    return StreamingResponse(endless())


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return Response("late")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    app = Starlette(
        routes=[
            Route("/hook", hook, methods=["POST"]),
            Route("/peer", peer, methods=["POST"]),
            Route("/slowpeer", slowpeer, methods=["POST"]),
            Route("/gzipped", gzipped, methods=["POST"]),
            Route("/cookie", cookie, methods=["POST"]),
            Route("/headers", echo_headers, methods=["POST"]),
            Route("/moved", moved, methods=["POST"]),
            Route("/huge", huge, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )
    with serve(app) as p:
        yield p


GUARD = UrlGuard.from_setting("127.0.0.1")


@contextlib.asynccontextmanager
async def poster(guard: UrlGuard) -> AsyncIterator[GuardedPoster]:
    client = GuardedPoster(guard)
    try:
        yield client
    finally:
        await client.aclose()


async def test_post_delivers_the_body_and_returns_the_answer(port: int) -> None:
    async with poster(GUARD) as client:
        got = await client.post(
            f"http://127.0.0.1:{port}/hook", b'{"a": 1}', headers={"content-type": "application/json"}
        )
    assert (got.status, got.body, got.truncated) == (202, b"got 8 application/json", False)


async def test_a_redirect_is_returned_not_followed(port: int) -> None:
    async with poster(GUARD) as client:
        got = await client.post(f"http://127.0.0.1:{port}/moved", b"{}")
    assert got.status == 307
    assert got.headers["location"] == "http://169.254.169.254/"


async def test_only_the_first_bytes_of_a_huge_answer_are_read(port: int) -> None:
    async with poster(GUARD) as client:
        got = await client.post(f"http://127.0.0.1:{port}/huge", b"{}", max_response_bytes=1000)
    assert len(got.body) == 1000
    assert got.truncated


async def test_post_times_out_and_is_guarded(port: int) -> None:
    async with poster(GUARD) as client:
        with pytest.raises(FetchFailed, match=r"timed out|took longer") as caught:
            await client.post(f"http://127.0.0.1:{port}/slow", b"{}", timeout_s=0.3)
        assert caught.value.kind == "timeout"
    async with poster(UrlGuard()) as client:
        with pytest.raises(BlockedUrl, match="loopback"):
            await client.post(f"http://127.0.0.1:{port}/hook", b"{}")


async def test_connections_are_reused_per_host_and_every_new_connection_is_judged(port: int) -> None:
    answers = {"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]}
    asked: list[str] = []

    async def resolve(host: str, _port: int) -> list[str]:
        asked.append(host)
        return answers[host]

    guard = UrlGuard(["127.0.0.1"], resolver=resolve)
    async with poster(guard) as client:
        first, again, other = [
            (await client.post(f"http://{host}:{port}/peer", b"{}")).body.decode().split()
            for host in ("a.test", "a.test", "b.test")
        ]
        assert first == again  # the same host: the kept-alive connection (same client port)
        assert other[0] == f"b.test:{port}" and other[1] != first[1]  # same IP, another host: its own connection
        assert asked == ["a.test", "b.test"]  # resolved (and judged) once per connection opened
        answers["a.test"] = ["169.254.169.254"]  # rebinding
        # The open connection goes on to the address that was checked when it opened...
        kept = (await client.post(f"http://a.test:{port}/peer", b"{}")).body.decode().split()
        assert kept == first
        # ...and no new connection goes to the new answer: two at once need a second connection.
        results = await asyncio.gather(
            *(client.post(f"http://a.test:{port}/slowpeer", b"{}") for _ in range(2)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, BlockedUrl)]
        assert len(refused) == 1 and "metadata" in refused[0].message, results
    async with poster(guard) as fresh:
        with pytest.raises(BlockedUrl, match="metadata"):
            await fresh.post(f"http://a.test:{port}/peer", b"{}")


async def test_blocked_literals_never_connect_and_bad_urls_are_named() -> None:
    async with poster(UrlGuard()) as client:
        for url, rule in [
            ("http://169.254.169.254/latest/meta-data", "metadata"),
            ("http://[::1]:9/hook", "loopback"),
            ("http://10.1.2.3/hook", "private"),
            ("http://[::ffff:127.0.0.1]/hook", "loopback"),
            # Legacy numeric forms a system resolver maps onto loopback: refused either way.
            ("http://2130706433/hook", "loopback|canonical"),
            ("http://127.1/hook", "loopback|canonical"),
            ("ftp://example.com/hook", "only http and https"),
            ("http:///hook", "no host|not a valid URL"),
        ]:
            with pytest.raises(BlockedUrl, match=rule):
                await client.post(url, b"{}")


async def test_answers_are_stored_as_sent_and_receivers_share_nothing(port: int) -> None:
    async with poster(GUARD) as client:
        packed = await client.post(f"http://127.0.0.1:{port}/gzipped", b"{}")
        assert packed.headers["content-encoding"] == "gzip"
        assert gzip.decompress(packed.body) == b"hello"  # not inflated: the bytes the receiver sent
        await client.post(f"http://127.0.0.1:{port}/cookie", b"{}")
        seen = orjson.loads((await client.post(f"http://127.0.0.1:{port}/headers", b"{}")).body)
    assert "cookie" not in seen  # the first receiver's cookie is not sent on
    assert "accept-encoding" not in seen


async def test_tls_is_verified_against_the_url_host_name(port: int, tls_files: tuple[Path, Path]) -> None:
    """The guard's resolver picks the address; TLS still sends SNI and checks the certificate for the
    URL's host name, so another name on the same address is refused."""
    cert, key = tls_files
    names = {"media.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}

    async def resolve(host: str, _port: int) -> list[str]:
        return names[host]

    guard = UrlGuard(["127.0.0.1"], resolver=resolve)
    tls_app = Starlette(routes=[Route("/peer", peer, methods=["POST"])])
    with serve(tls_app, certfile=str(cert), keyfile=str(key)) as tls_port:
        client = GuardedPoster(guard, verify=ssl.create_default_context(cafile=str(cert)))
        try:
            got = await client.post(f"https://media.test:{tls_port}/peer", b"{}")
            assert got.status == 200 and got.body.decode().split()[0] == f"media.test:{tls_port}"
            with pytest.raises(FetchFailed, match=r"[Cc]ertificate") as caught:
                await client.post(f"https://other.test:{tls_port}/peer", b"{}")
            assert caught.value.kind == "connection"
        finally:
            await client.aclose()
