"""Validation of client input into typed requests; every failure names the field."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from app.api.json_limits import check_metadata, check_storable
from app.errors import InvalidInput
from app.hume.emotions import MODELS
from app.hume.gateway import validate_models

MAX_ITEMS = 100  # Hume's per-request cap for URLs and for texts (HUME.md 8)
MAX_URL_LENGTH = 4096


@dataclass(frozen=True)
class SubmitRequest:
    urls: list[str]
    text: list[str]
    models: dict[str, Any] | None
    metadata: dict[str, Any]

    def fingerprint(self) -> str:
        canonical = orjson.dumps(
            {"urls": self.urls, "text": self.text, "models": self.models, "metadata": self.metadata},
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
    if parts.username is not None or parts.password is not None:
        # Jobs are readable by every key of the tenant: a password in a URL would be shown to all of them.
        raise InvalidInput(f"urls[{index}]", "must not carry credentials (user:pass@); use a presigned URL")


def submit_request(data: dict[str, Any]) -> SubmitRequest:
    unknown = sorted(set(data) - {"urls", "text", "models", "metadata"})
    if unknown:
        raise InvalidInput(unknown[0], "unknown field (allowed: urls, text, models, metadata)")
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
            check_storable(options, f"models.{name}")
        try:
            models = validate_models(models)
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise InvalidInput(field, message) from None
    metadata = data.get("metadata")
    metadata = {} if metadata is None else check_metadata(metadata)
    return SubmitRequest(urls=urls, text=text, models=models, metadata=metadata)
