"""Validation of ``POST /v0/batch/jobs`` bodies and the echo Hume returns in ``request``.

Hume echoes the request with every model's defaults filled in (FERN example in HUME.md 1.4);
the emulator does the same so clients can rely on the echoed settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Json = dict[str, Any]

GRANULARITIES = ("word", "sentence", "utterance", "conversational_turn")
MAX_ITEMS = 100  # Hume: at most 100 URLs, 100 strings and 100 local files per request
MODEL_NAMES = ("face", "burst", "prosody", "language", "ner", "facemesh")
TRANSCRIPTION_LANGUAGES = frozenset(
    "zh da nl en en-AU en-IN en-NZ en-GB fr fr-CA de hi hi-Latn id it ja ko no pl pt pt-BR pt-PT ru es "
    "es-419 sv ta tr uk".split()
)


class BatchRequestError(ValueError):
    """The request is invalid; the message is returned to the caller with a 400."""


def _bool(cfg: Json, key: str, default: bool, where: str) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BatchRequestError(f"{where}.{key} must be a boolean")
    return value


def _number(cfg: Json, key: str, default: float | None, lo: float, hi: float, where: str) -> float | None:
    value = cfg.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise BatchRequestError(f"{where}.{key} must be a number between {lo} and {hi}")
    return float(value)


def _object(value: object, where: str) -> Json:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BatchRequestError(f"{where} must be an object")
    return value


def _unconfigurable(value: object, where: str) -> Json | None:
    """``facs``/``descriptions``/``sentiment``/``toxicity``: ``{}`` turns them on, null leaves them off."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BatchRequestError(f"{where} must be an object or null")
    return value


def _granularity(cfg: Json, default: str, where: str) -> str:
    value = cfg.get("granularity") or default
    if value not in GRANULARITIES:
        raise BatchRequestError(f"{where}.granularity must be one of {', '.join(GRANULARITIES)}")
    return str(value)


def _face(raw: object) -> Json:
    cfg = _object(raw, "models.face")
    return {
        "fps_pred": _number(cfg, "fps_pred", 3.0, 0, 1000, "models.face"),
        "prob_threshold": _number(cfg, "prob_threshold", 0.99, 0, 1, "models.face"),
        "identify_faces": _bool(cfg, "identify_faces", False, "models.face"),
        "min_face_size": int(_number(cfg, "min_face_size", 60, 0, 10_000, "models.face") or 60),
        "facs": _unconfigurable(cfg.get("facs"), "models.face.facs"),
        "descriptions": _unconfigurable(cfg.get("descriptions"), "models.face.descriptions"),
        "save_faces": _bool(cfg, "save_faces", False, "models.face"),
    }


def _window(raw: object) -> Json | None:
    if raw is None:
        return None
    cfg = _object(raw, "models.prosody.window")
    return {
        "length": _number(cfg, "length", 4.0, 0.5, 3600, "models.prosody.window"),
        "step": _number(cfg, "step", 1.0, 0.5, 3600, "models.prosody.window"),
    }


def _prosody(raw: object) -> Json:
    cfg = _object(raw, "models.prosody")
    return {
        "granularity": _granularity(cfg, "utterance", "models.prosody"),
        "identify_speakers": _bool(cfg, "identify_speakers", False, "models.prosody"),
        "window": _window(cfg.get("window")),
    }


def _language(raw: object) -> Json:
    cfg = _object(raw, "models.language")
    return {
        "granularity": _granularity(cfg, "word", "models.language"),
        "identify_speakers": _bool(cfg, "identify_speakers", False, "models.language"),
        "sentiment": _unconfigurable(cfg.get("sentiment"), "models.language.sentiment"),
        "toxicity": _unconfigurable(cfg.get("toxicity"), "models.language.toxicity"),
    }


def _ner(raw: object) -> Json:
    cfg = _object(raw, "models.ner")
    return {"identify_speakers": _bool(cfg, "identify_speakers", False, "models.ner")}


def normalize_models(raw: object) -> Json:
    """All six model keys; the ones not requested are null. No ``models`` at all runs every model."""
    if raw is None:
        raw = {name: {} for name in MODEL_NAMES}
    models = _object(raw, "models")
    unknown = set(models) - set(MODEL_NAMES)
    if unknown:
        raise BatchRequestError(f"models has unknown keys: {', '.join(sorted(unknown))}")
    builders: dict[str, Callable[[object], Json]] = {
        "face": _face,
        "burst": lambda r: _object(r, "models.burst"),
        "prosody": _prosody,
        "language": _language,
        "ner": _ner,
        "facemesh": lambda r: _object(r, "models.facemesh"),
    }
    return {name: (builders[name](models[name]) if models.get(name) is not None else None) for name in MODEL_NAMES}


def normalize_transcription(body: Json) -> Json | None:
    """Defaults when absent; explicitly null disables transcription (FERN docstring)."""
    if "transcription" in body and body["transcription"] is None:
        return None
    cfg = _object(body.get("transcription"), "transcription")
    lang = cfg.get("language")
    if lang is not None and lang not in TRANSCRIPTION_LANGUAGES:
        raise BatchRequestError(f"transcription.language '{lang}' is not a supported language")
    return {
        "language": lang,
        "identify_speakers": _bool(cfg, "identify_speakers", False, "transcription"),
        "confidence_threshold": _number(cfg, "confidence_threshold", 0.5, 0, 1, "transcription"),
    }


def _str_list(body: Json, key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BatchRequestError(f"{key} must be a list of strings")
    if len(value) > MAX_ITEMS:
        raise BatchRequestError(
            f"{key} has {len(value)} entries; at most {MAX_ITEMS} are allowed. Consider providing them as an archive."
        )
    return list(value)


def _http_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BatchRequestError(f"{where} '{url}' is not a valid http(s) URL")


def normalize_request(body: object, files: list[Json]) -> Json:
    """The request as Hume echoes it; raises ``BatchRequestError`` for what Hume rejects."""
    if not isinstance(body, dict):
        raise BatchRequestError("Request body must be a JSON object")
    urls = _str_list(body, "urls")
    for url in urls:
        _http_url(url, "URL")
    text = _str_list(body, "text")
    if len(files) > MAX_ITEMS:
        raise BatchRequestError(f"At most {MAX_ITEMS} local files are allowed per request")
    if not urls and not text and not files:
        raise BatchRequestError("The request must include at least one of urls, text or files")
    callback_url = body.get("callback_url")
    if callback_url is not None:
        if not isinstance(callback_url, str):
            raise BatchRequestError("callback_url must be a string")
        _http_url(callback_url, "callback_url")
    notify = body.get("notify")
    if notify is not None and not isinstance(notify, bool):
        raise BatchRequestError("notify must be a boolean")
    return {
        "models": normalize_models(body.get("models")),
        "transcription": normalize_transcription(body),
        "urls": urls,
        "text": text,
        "callback_url": callback_url,
        "notify": bool(notify),
        "files": files,
    }
