"""TTS request normalization: what makes two requests the same cache entry, and what keeps them apart."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from app.errors import InvalidInput
from app.tts.schemas import parse_request
from app.tts.service import Kind


def key(body: dict[str, Any], kind: Kind = "audio") -> str:
    return parse_request(body).key(kind)


def test_equivalent_spellings_share_a_key() -> None:
    """Composed and decomposed accents, surrounding spaces and spelled-out defaults are one request."""
    composed = "Café au lait"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    base = key({"text": composed})
    assert key({"text": f"  {decomposed}\n"}) == base
    assert key({"text": composed, "speed": 1, "format": "mp3", "stream": True, "description": "  "}) == base
    voice = key({"text": composed, "voice": {"name": "Ava"}})
    assert key({"text": composed, "voice": {"name": "Ava", "provider": "CUSTOM_VOICE"}}) == voice
    assert key({"text": composed, "voice": {"name": " Ava ", "provider": None}}) == voice


def test_what_changes_the_audio_changes_the_key() -> None:
    """Every field that changes the audio, and JSON vs bytes, gives a distinct key."""
    base: dict[str, Any] = {"text": "Hello."}
    variants = [
        base,
        {"text": "Hello!"},
        {**base, "description": "whispering"},
        {**base, "voice": {"name": "Ava"}},
        {**base, "voice": {"id": "Ava"}},
        {**base, "voice": {"name": "Ava", "provider": "HUME_AI"}},
        {**base, "speed": 1.25},
        {**base, "format": "wav"},
    ]
    keys = {key(v) for v in variants} | {key(base, "json")}
    assert len(keys) == len(variants) + 1


def test_text_limit_counts_characters_not_bytes() -> None:
    """Hume's limit is 5000 characters: 5000 multi-byte characters pass, 5001 do not."""
    assert parse_request({"text": "é" * 5000}).spec.text == "é" * 5000
    with pytest.raises(InvalidInput) as raised:
        parse_request({"text": "é" * 5001})
    assert raised.value.field == "text"
