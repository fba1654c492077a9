"""The guarded POST for outbound webhooks: guard applied, redirects not followed, answers read only in part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from app.egress.errors import BlockedUrl, FetchFailed
from app.egress.pinned import PinnedClient
from app.egress.post import post_small
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
            Route("/moved", moved, methods=["POST"]),
            Route("/huge", huge, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )
    with serve(app) as p:
        yield p


GUARD = UrlGuard.from_setting("127.0.0.1")


async def test_post_delivers_the_body_and_returns_the_answer(port: int) -> None:
    async with PinnedClient(GUARD) as client:
        got = await post_small(
            client, f"http://127.0.0.1:{port}/hook", b'{"a": 1}', headers={"content-type": "application/json"}
        )
    assert (got.status, got.body, got.truncated) == (202, b"got 8 application/json", False)


async def test_a_redirect_is_returned_not_followed(port: int) -> None:
    async with PinnedClient(GUARD) as client:
        got = await post_small(client, f"http://127.0.0.1:{port}/moved", b"{}")
    assert got.status == 307
    assert got.headers["location"] == "http://169.254.169.254/"


async def test_only_the_first_bytes_of_a_huge_answer_are_read(port: int) -> None:
    async with PinnedClient(GUARD) as client:
        got = await post_small(client, f"http://127.0.0.1:{port}/huge", b"{}", max_response_bytes=1000)
    assert len(got.body) == 1000
    assert got.truncated


async def test_post_times_out_and_is_guarded(port: int) -> None:
    async with PinnedClient(GUARD) as client:
        with pytest.raises(FetchFailed, match=r"timed out|took longer") as caught:
            await post_small(client, f"http://127.0.0.1:{port}/slow", b"{}", timeout_s=0.3)
        assert caught.value.kind == "timeout"
    async with PinnedClient(UrlGuard()) as client:
        with pytest.raises(BlockedUrl, match="loopback"):
            await post_small(client, f"http://127.0.0.1:{port}/hook", b"{}")


async def test_connections_are_reused_per_host_and_the_guard_still_runs_every_time(port: int) -> None:
    answers = {"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]}

    async def resolve(host: str, _port: int) -> list[str]:
        return answers[host]

    guard = UrlGuard(["127.0.0.1"], resolver=resolve)
    async with PinnedClient(guard) as client:
        first, again, other = [
            (await post_small(client, f"http://{host}:{port}/peer", b"{}")).body.decode().split()
            for host in ("a.test", "a.test", "b.test")
        ]
        assert first == again  # the same host: the kept-alive connection (same client port)
        assert other[0] == f"b.test:{port}" and other[1] != first[1]  # same IP, another host: its own connection
        answers["a.test"] = ["169.254.169.254"]  # rebinding: the open connection to 127.0.0.1 must not be used
        with pytest.raises(BlockedUrl, match="metadata"):
            await post_small(client, f"http://a.test:{port}/peer", b"{}")
