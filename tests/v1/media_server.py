"""A local media server for v1 jobs: real files made with PyAV, plus the hostile answers a URL can give."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.asgi_server import serve
from tests.media_factory import make_audio_only, make_mp4, make_wav, truncate

GAPS = [(2.0, 3.0), (5.0, 6.0)]
# v1 face options that keep every face the emulator finds in these small (320x240) videos: its faces there are
# at most 64 px and of any confidence, so Hume's defaults (threshold 0.9, min_size 60; HUME-V1-FACTS §3) keep
# almost none.
EVERY_FACE = {"threshold": 0, "min_size": 1}


def make_media(directory: Path) -> None:
    make_mp4(directory / "talk.mp4", 8.0, gaps=GAPS)
    make_wav(directory / "voice.wav", 8.0, gaps=GAPS)
    make_audio_only(directory / "song.m4a", 4.0)
    truncate(make_mp4(directory / "whole.mp4", 6.0), directory / "cut.mp4", keep=0.5)
    (directory / "notes.txt").write_text("this is not media\n" * 100)


async def _bytes(n: int, stall_after: int | None = None) -> AsyncIterator[bytes]:
    sent = 0
    while sent < n:
        if stall_after is not None and sent >= stall_after:
            await asyncio.sleep(30)
        yield b"m" * 65536
        sent += 65536


@contextlib.contextmanager
def media_server(directory: Path) -> Iterator[str]:
    async def file(request: Request) -> Response:
        return FileResponse(directory / request.path_params["name"])

    async def to(request: Request) -> Response:
        return RedirectResponse(request.query_params["url"], status_code=302)

    async def lying(request: Request) -> Response:
        return StreamingResponse(_bytes(8 << 20), headers={"content-length": "100"}, media_type="video/mp4")

    async def huge(request: Request) -> Response:
        # No Content-Length (chunked): only counting while streaming can stop it.
        return StreamingResponse(_bytes(8 << 20), media_type="video/mp4")

    async def stall(request: Request) -> Response:
        return StreamingResponse(_bytes(1 << 20, stall_after=65536), media_type="video/mp4")

    app = Starlette(
        routes=[
            Route("/media/{name}", file),
            Route("/to", to),
            Route("/lying.mp4", lying),
            Route("/huge.mp4", huge),
            Route("/stall.mp4", stall),
        ]
    )
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"
