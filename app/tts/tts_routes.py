"""POST /v1/tts (cached text-to-speech) and GET /v1/tts/cache/stats."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import asdict, replace

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.request_helpers import JSON, authorize, deps, parse_json_object, read_body
from app.errors import AppError, InvalidInput
from app.hume.errors import HumeError, HumeRejectedError, HumeTransientError
from app.tts.tts_service import Kind, TtsService, parse_request

DEFAULT_RETRY_AFTER_S = 5


class HumeRejected(AppError):
    """Hume rejected the TTS request."""

    status = 422
    code = "hume_rejected"


class HumeBusy(AppError):
    """Hume is rate limiting TTS requests; retry later."""

    status = 503
    code = "hume_busy"


class HumeFailed(AppError):
    """Hume failed to synthesize speech."""

    status = 502
    code = "hume_unavailable"


def _service(request: Request) -> TtsService:
    return deps(request).get(TtsService)


def _client_error(exc: HumeError) -> AppError:
    """What the caller is told when Hume (after all retries) did not give us audio."""
    if isinstance(exc, HumeRejectedError) and exc.status in (400, 422):
        return HumeRejected(f"Hume rejected the request: {exc}")
    if isinstance(exc, HumeTransientError):
        retry = {"Retry-After": str(max(1, math.ceil(exc.retry_after or DEFAULT_RETRY_AFTER_S)))}
        if exc.status == 429:
            return HumeBusy(headers=retry)
        return HumeFailed(f"Hume is unavailable ({exc.status or 'no answer'}); retry later", headers=retry)
    # 401/403/404 and the like are about our credentials or setup, not the caller's request.
    return HumeFailed(f"Hume failed the TTS request ({exc.status or 'error'})")


def _kind(request: Request, stream: bool) -> Kind:
    wanted = request.query_params.get("format")
    if wanted is None or wanted == "audio":
        return "audio"
    if wanted != "json":
        raise InvalidInput("format", "query parameter must be json (Hume's JSON with base64 audio) or audio")
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
        {
            "entries": stats.entries,
            "bytes": stats.bytes,
            "max_bytes": service.max_bytes,
            "hits": stats.hits,
            "oldest_used_at": stats.oldest_used_at.isoformat() if stats.oldest_used_at else None,
            "newest_used_at": stats.newest_used_at.isoformat() if stats.newest_used_at else None,
            "process": asdict(service.counters),
        }
    )


routes = [
    Route("/v1/tts", synthesize, methods=["POST"]),
    Route("/v1/tts/cache/stats", cache_stats, methods=["GET"]),
]
