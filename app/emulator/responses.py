"""Small response helpers shared by the route modules."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .state import EmulatorState


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return OrjsonResponse(content, status_code=status_code, headers=headers)


def error(status_code: int, message: str) -> Response:
    """Batch API errors. Hume's exact error body for batch is undocumented; ``message`` is assumed."""
    return json({"status_code": status_code, "message": message}, status_code=status_code)


def emu(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emu
    return state


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    return orjson.loads(raw)


class MultipartPart:
    def __init__(self, name: str, filename: str | None, content_type: str | None, data: bytes) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data


def parse_multipart(content_type: str, body: bytes) -> list[MultipartPart]:
    """multipart/form-data with the stdlib (python-multipart is not a dependency)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ValueError("body is not multipart")
    parts: list[MultipartPart] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        ctype = part.get("content-type")
        parts.append(MultipartPart(name, filename, str(ctype) if ctype else None, data))
    return parts
