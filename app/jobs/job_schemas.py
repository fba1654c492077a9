"""Validation of client input into typed requests; every failure names the field."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from app.config import BACKENDS, Backend
from app.errors import InvalidInput
from app.hume.emotions import MODELS
from app.hume.gateway import validate_models

MAX_ITEMS = 100  # Hume's per-request cap for URLs and for texts (HUME.md 8)
MAX_URL_LENGTH = 4096
# What Hume's v1 API measures: voice from the audio, faces from the frames. The batch-only models
# (language, ner, burst, facemesh) and text inputs have no v1 endpoint.
V1_MODELS = ("prosody", "face")


@dataclass(frozen=True)
class SubmitRequest:
    urls: list[str]
    text: list[str]
    models: dict[str, Any] | None
    metadata: dict[str, Any]
    backend: Backend = "batch"

    def fingerprint(self) -> str:
        canonical = orjson.dumps(
            {
                "urls": self.urls,
                "text": self.text,
                "models": self.models,
                "metadata": self.metadata,
                "backend": self.backend,
            },
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(canonical).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {"urls": self.urls, "text": self.text, "models": self.models}


def _string_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(key, "must be a list of strings")
    if len(value) > MAX_ITEMS:
        raise InvalidInput(key, f"at most {MAX_ITEMS} items (Hume's limit); use an archive for more")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"{key}[{i}]", "must be a non-empty string")
        if "\x00" in item:
            raise InvalidInput(f"{key}[{i}]", "must not contain NUL characters")
    return list(value)


def _check_url(index: int, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InvalidInput(f"urls[{index}]", "must be an absolute http(s) URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"urls[{index}]", f"longer than {MAX_URL_LENGTH} characters")


def _backend(data: dict[str, Any], default: Backend) -> Backend:
    raw = data.get("backend")
    if raw is None:
        return default
    for backend in BACKENDS:
        if raw == backend:
            return backend
    raise InvalidInput("backend", f"must be one of: {', '.join(BACKENDS)}")


def _check_v1(urls: list[str], text: list[str], models: dict[str, Any] | None) -> None:
    if text:
        raise InvalidInput("text", 'the v1 backend measures media files only; text needs backend "batch"')
    if not urls:
        raise InvalidInput("urls", "the v1 backend needs at least one media URL")
    for name in models or {}:
        if name not in V1_MODELS:
            raise InvalidInput(
                f"models.{name}",
                f'the v1 backend measures only {" and ".join(V1_MODELS)}; {name} needs backend "batch"',
            )


def submit_request(data: dict[str, Any], default_backend: Backend = "batch") -> SubmitRequest:
    unknown = sorted(set(data) - {"urls", "text", "models", "metadata", "backend"})
    if unknown:
        raise InvalidInput(unknown[0], "unknown field (allowed: urls, text, models, metadata, backend)")
    backend = _backend(data, default_backend)
    urls = _string_list(data, "urls")
    for i, url in enumerate(urls):
        _check_url(i, url)
    text = _string_list(data, "text")
    if not urls and not text:
        raise InvalidInput("urls", "give at least one URL (or text)")
    models = data.get("models")
    if models is not None:
        if not isinstance(models, dict) or not models:
            raise InvalidInput("models", f"must be an object with some of: {', '.join(MODELS)}")
        for name, options in models.items():
            if name not in MODELS:
                raise InvalidInput(f"models.{name}", f"unknown model (known: {', '.join(MODELS)})")
            if not isinstance(options, dict):
                raise InvalidInput(f"models.{name}", "must be an object of model options")
        try:
            models = validate_models(models)
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise InvalidInput(field, message) from None
    if backend == "v1":
        _check_v1(urls, text, models)
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata", "must be an object")
    return SubmitRequest(urls=urls, text=text, models=models, metadata=metadata, backend=backend)
