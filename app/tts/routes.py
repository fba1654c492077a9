"""POST /v1/tts (cached text-to-speech) and GET /v1/tts/cache/stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, replace

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.auth import authorize
from app.api.bodies import parse_json_object, read_body
from app.api.hume_failures import hume_failure
from app.api.responses import JSON, deps
from app.api.typed_input import query_struct
from app.errors import AppError, InvalidInput
from app.hume.errors import HumeError
from app.tts.schemas import ProcessCounters, TtsCacheStats, TtsQuery, parse_request
from app.tts.service import Kind, TtsService


def _service(request: Request) -> TtsService:
    return deps(request).tts


def _client_error(exc: HumeError) -> AppError:
    return hume_failure(exc, client_shaped=True)


def _kind(request: Request, stream: bool) -> Kind:
    wanted = query_struct(request, TtsQuery).format
    if wanted is None or wanted == "audio":
        return "audio"
    if stream:
        raise InvalidInput("stream", "streaming returns audio; drop ?format=json or stream")
    return "json"


async def synthesize(request: Request) -> Response:
    principal = await authorize(request, "tts")
    service = _service(request)
    body = parse_json_object(await read_body(request, deps(request).settings.max_body_bytes))
    tts_request = replace(parse_request(body), tenant=principal.tenant)
    kind = _kind(request, tts_request.stream)
    outcome = await service.open(tts_request, kind)
    headers = {"X-Cache": outcome.cache}
    chunks = outcome.chunks
    if not tts_request.stream or outcome.cache == "hit":
        try:
            content = b"".join([chunk async for chunk in chunks])
        except HumeError as exc:
            raise _client_error(exc) from None
        return Response(content, media_type=outcome.content_type, headers=headers)
    # Wait for the first bytes before answering: until then a failure can still be a proper JSON error.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except HumeError as exc:
        raise _client_error(exc) from None

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(rest(), media_type=outcome.content_type, headers=headers)


async def cache_stats(request: Request) -> Response:
    await authorize(request, "tts")
    service = _service(request)
    stats = await service.stats()
    return JSON(
        TtsCacheStats(
            entries=stats.entries,
            bytes=stats.bytes,
            max_bytes=service.max_bytes,
            hits=stats.hits,
            oldest_used_at=stats.oldest_used_at,
            newest_used_at=stats.newest_used_at,
            process=ProcessCounters(**asdict(service.counters)),
        )
    )


routes = [
    Route("/v1/tts", synthesize, methods=["POST"]),
    Route("/v1/tts/cache/stats", cache_stats, methods=["GET"]),
]
