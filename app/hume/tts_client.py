"""Hume TTS (Octave) through the official SDK (HUME.md 5, 6.2): one utterance in, audio or Hume's JSON out.

Retries: the SDK retries 429/5xx twice (honouring Retry-After) on its non-streaming calls; we add one more
round on top for those and for connection errors, which the SDK never retries. Streaming calls get no SDK
retries at all, so ours retry them, but only before the first byte reaches anyone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from hume import AsyncHumeClient
from hume.core.api_error import ApiError
from hume.tts import (
    FormatMp3,
    FormatPcm,
    FormatWav,
    PostedUtterance,
    PostedUtteranceVoiceWithId,
    PostedUtteranceVoiceWithName,
)

from app.config import HUME_VOICE_URL
from app.hume.call_timing import timed_client
from app.hume.errors import HumeError, HumeRejectedError, HumeTransientError
from app.hume.gateway import translate

log = structlog.get_logger(__name__)

T = TypeVar("T")

FORMATS = ("mp3", "wav", "pcm")
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}
PROVIDERS = ("HUME_AI", "CUSTOM_VOICE")
DEFAULT_PROVIDER = "CUSTOM_VOICE"  # Hume's default when a voice names none (HUME.md 5.2)
_FORMAT_TYPES: dict[str, Any] = {"mp3": FormatMp3, "wav": FormatWav, "pcm": FormatPcm}
MAX_RETRY_DELAY_S = 10.0


@dataclass(frozen=True)
class TtsSpec:
    """One utterance as Hume receives it, already validated and normalized by the caller."""

    text: str
    description: str | None = None
    voice_id: str | None = None
    voice_name: str | None = None
    voice_provider: str = DEFAULT_PROVIDER
    speed: float = 1.0
    format: str = "mp3"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    def canonical(self) -> dict[str, Any]:
        """The fields that decide the audio, with defaults spelled out (the cache key is built from this)."""
        voice = None
        if self.voice_id is not None:
            voice = {"id": self.voice_id, "provider": self.voice_provider}
        elif self.voice_name is not None:
            voice = {"name": self.voice_name, "provider": self.voice_provider}
        return {
            "text": self.text,
            "description": self.description,
            "voice": voice,
            "speed": self.speed,
            "format": self.format,
        }

    def utterance(self) -> PostedUtterance:
        voice: PostedUtteranceVoiceWithId | PostedUtteranceVoiceWithName | None = None
        if self.voice_id is not None:
            voice = PostedUtteranceVoiceWithId(id=self.voice_id, provider=self.voice_provider)
        elif self.voice_name is not None:
            voice = PostedUtteranceVoiceWithName(name=self.voice_name, provider=self.voice_provider)
        # Only fields we mean: the SDK would otherwise send explicit nulls.
        fields: dict[str, Any] = {"text": self.text, "speed": self.speed}
        if self.description is not None:
            fields["description"] = self.description
        if voice is not None:
            fields["voice"] = voice
        return PostedUtterance(**fields)


@dataclass(frozen=True)
class Synthesis:
    audio: bytes
    generation_id: str | None
    json: bytes | None = None
    """Hume's ReturnTts document, when asked for."""


def _detail_message(body: Any) -> str | None:
    """Hume's 422 body `{"detail": [{"loc", "msg"}]}` (a pydantic model from the SDK, or a dict) as one line."""
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json")
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc") or [] if p != "body"]
                parts.append(f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid')}")
        return "; ".join(parts) or None
    for key in ("message", "error"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return None


def to_error(exc: Exception) -> HumeError:
    """SDK/transport failures as our error types; a rejection carries Hume's own words."""
    error = translate(exc, what="TTS", batch=False)
    if isinstance(exc, ApiError) and isinstance(error, HumeRejectedError):
        message = _detail_message(exc.body)
        if message:
            error = HumeRejectedError(message[:1000], status=error.status)
    return error


class HumeTts:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        attempts: int = 2,
        stream_attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self._http = timed_client("tts", timeout_s=timeout_s)
        self.client = AsyncHumeClient(
            api_key=api_key, base_url=(base_url or HUME_VOICE_URL).rstrip("/"), httpx_client=self._http
        )
        self._options: Any = {"max_retries": max_retries}
        self._attempts = max(1, attempts)
        self._stream_attempts = max(1, stream_attempts)
        self._backoff_s = backoff_s

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _retrying(self, call: Callable[[], Awaitable[T]], attempts: int) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return await call()
            except Exception as exc:
                error = to_error(exc)
                if not isinstance(error, HumeTransientError) or attempt == attempts:
                    raise error from exc
                delay = min(error.retry_after or self._backoff_s * 2 ** (attempt - 1), MAX_RETRY_DELAY_S)
                log.info("retrying Hume TTS", attempt=attempt, status=error.status, delay_s=delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def synthesize(self, spec: TtsSpec, *, keep_json: bool = False) -> Synthesis:
        """The first generation's audio (POST /v0/tts), optionally with Hume's whole JSON answer."""

        async def call() -> Synthesis:
            result = await self.client.tts.synthesize_json(
                utterances=[spec.utterance()],
                format=_FORMAT_TYPES[spec.format](),
                num_generations=1,
                request_options=self._options,
            )
            if not result.generations:
                raise HumeError("Hume's TTS answer has no generations")
            generation = result.generations[0]
            try:
                audio = base64.b64decode(generation.audio, validate=True)
            except (binascii.Error, ValueError):
                raise HumeError("Hume's TTS answer has audio that is not base64") from None
            document = result.model_dump_json(by_alias=True, exclude_unset=True).encode() if keep_json else None
            return Synthesis(audio=audio, generation_id=generation.generation_id, json=document)

        return await self._retrying(call, self._attempts)

    async def stream(self, spec: TtsSpec) -> AsyncIterator[bytes]:
        """Audio bytes as Hume streams them (POST /v0/tts/stream/file); the chunks concatenate into one file."""
        attempt = 0
        while True:
            attempt += 1
            sent = False
            try:
                async for chunk in self.client.tts.synthesize_file_streaming(
                    utterances=[spec.utterance()],
                    format=_FORMAT_TYPES[spec.format](),
                    num_generations=1,
                    # One header for the whole generation, so the stored concatenation is a valid file.
                    strip_headers=True,
                    request_options=self._options,
                ):
                    if chunk:
                        sent = True
                        yield chunk
                return
            except Exception as exc:
                error = to_error(exc)
                if sent or not isinstance(error, HumeTransientError) or attempt >= self._stream_attempts:
                    raise error from exc
                delay = min(error.retry_after or self._backoff_s * 2 ** (attempt - 1), MAX_RETRY_DELAY_S)
                log.info("retrying Hume TTS stream", attempt=attempt, status=error.status, delay_s=delay)
                await asyncio.sleep(delay)
