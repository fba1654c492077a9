"""A recording hop between the service and the emulator's v1 host: every request is forwarded unchanged over a
real socket and kept as sent, so a test can read the exact bytes the Hume client put on the wire (the
multipart `config` part above all), which the emulator's recorded run only shows after applying defaults."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.asgi_server import serve

# Hop-by-hop and length headers are the forwarding client's business, not the request's.
_DROPPED = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    content_type: str
    body: bytes

    def parts(self) -> list[tuple[str, bytes]]:
        """(name, bytes) of each multipart part, in the order sent."""
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.content_type.encode("latin-1") + b"\r\n\r\n" + self.body
        )
        out: list[tuple[str, bytes]] = []
        for part in message.iter_parts():
            assert isinstance(part, Message)
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            assert isinstance(name, str) and isinstance(payload, bytes)
            out.append((name, payload))
        return out

    def config(self) -> Any:
        """The decoded `config` part, or None when the request sent none."""
        configs = [data for name, data in self.parts() if name == "config"]
        assert len(configs) <= 1, "more than one config part"
        return orjson.loads(configs[0]) if configs else None

    def files(self) -> int:
        return sum(1 for name, _ in self.parts() if name == "file")


class WireRecorder:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._sent: list[Sent] = []
        self._lock = threading.Lock()

    def sent(self, path: str) -> list[Sent]:
        with self._lock:
            return [s for s in self._sent if s.path == path]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self._sent.append(Sent(request.method, request.url.path, request.headers.get("content-type", ""), body))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        url = self.target + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(request.method, url, content=body, headers=headers)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._forward, methods=methods)])


@contextlib.contextmanager
def wire_recorder(target: str) -> Iterator[tuple[WireRecorder, str]]:
    """(recorder, its URL): point the service's HUME_CLOUD_URL at the URL."""
    recorder = WireRecorder(target)
    with serve(recorder.app()) as port:
        yield recorder, f"http://127.0.0.1:{port}"
