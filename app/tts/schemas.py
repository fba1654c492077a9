"""The TTS API as declared: the request body, the `format` query parameter, the cache statistics. The limits
are Hume's per-utterance limits (HUME.md 5.2); the OpenAPI document states them from here."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from app.api.typed_input import QueryStruct, body_struct
from app.errors import InvalidInput
from app.hume.tts_client import DEFAULT_PROVIDER, TtsSpec
from app.tts.service import TtsRequest

MAX_TEXT = 5000
MAX_DESCRIPTION = 1000
MAX_VOICE_REF = 256
MIN_SPEED, MAX_SPEED = 0.5, 2.0

# tts_client.FORMATS and PROVIDERS hold the same values (tests/unit/test_openapi.py compares them).
AudioFormat = Literal["mp3", "wav", "pcm"]
Provider = Literal["HUME_AI", "CUSTOM_VOICE"]
VoiceRef = Annotated[str, Meta(min_length=1, max_length=MAX_VOICE_REF)]


class Voice(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of id or name; provider defaults to CUSTOM_VOICE (Hume's default)."""

    id: VoiceRef | None = None
    name: VoiceRef | None = None
    provider: Provider | None = None


class TtsBody(msgspec.Struct, forbid_unknown_fields=True):
    """One utterance; the same words spelled alike (Unicode NFC, trimmed) are one cache entry."""

    text: Annotated[str, Meta(min_length=1, max_length=MAX_TEXT, description="characters, not bytes")]
    description: Annotated[str, Meta(max_length=MAX_DESCRIPTION, description="acting instructions")] | None = None
    voice: Voice | None = None
    speed: Annotated[float, Meta(ge=MIN_SPEED, le=MAX_SPEED)] | None = None
    format: AudioFormat | None = None
    stream: Annotated[bool, Meta(description="chunked audio from Hume's streaming endpoint")] | None = None


class TtsQuery(QueryStruct):
    format: (
        Annotated[Literal["audio", "json"], Meta(description="json: Hume's JSON (base64 audio) instead of bytes")]
        | None
    ) = None


class ProcessCounters(msgspec.Struct):
    """Since this server process started."""

    hits: int
    misses: int
    coalesced: int
    upstream_calls: int
    evictions: int
    store_errors: int


class TtsCacheStats(msgspec.Struct):
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    oldest_used_at: datetime | None
    newest_used_at: datetime | None
    process: ProcessCounters


def _normalized(name: str, value: str | None, *, required: bool) -> str | None:
    if value is not None and "\x00" in value:
        # Postgres text cannot hold NUL: such a request could never be cached and every repeat cost a call.
        raise InvalidInput(name, "must not contain NUL characters")
    # NFC and trimmed: the same words typed two ways are one cache entry and one Hume request.
    value = unicodedata.normalize("NFC", value).strip() if value is not None else None
    if not value:
        if required:
            raise InvalidInput(name, "must not be empty")
        return None
    return value


def _voice(voice: Voice | None) -> tuple[str | None, str | None, str]:
    if voice is None:
        return None, None, DEFAULT_PROVIDER
    if (voice.id is None) == (voice.name is None):
        raise InvalidInput("voice", "give exactly one of id or name")
    which = "id" if voice.id is not None else "name"
    ref = (voice.id or voice.name or "").strip()
    if "\x00" in ref:
        raise InvalidInput(f"voice.{which}", "must not contain NUL characters")
    if not ref:
        raise InvalidInput(f"voice.{which}", f"must be a non-empty string of at most {MAX_VOICE_REF} characters")
    provider = voice.provider or DEFAULT_PROVIDER
    return (ref, None, provider) if which == "id" else (None, ref, provider)


def parse_request(data: dict[str, Any]) -> TtsRequest:
    """The request body as a TtsRequest; InvalidInput (422) names the first bad field."""
    body = body_struct(data, TtsBody)
    text = _normalized("text", body.text, required=True)
    assert text is not None
    voice_id, voice_name, provider = _voice(body.voice)
    spec = TtsSpec(
        text=text,
        description=_normalized("description", body.description, required=False),
        voice_id=voice_id,
        voice_name=voice_name,
        voice_provider=provider,
        speed=float(body.speed if body.speed is not None else 1.0),
        format=body.format or "mp3",
    )
    return TtsRequest(spec=spec, stream=bool(body.stream))
