"""Hume-shaped predictions payloads generated in code, through the emulator's own generators.

The emulator already models what Hume returns for every model (face tracks, prosody utterances,
language with sentiment and toxicity, NER, archives, per-file errors, failed sources), so benches
and tests reuse it instead of keeping a second generator that could drift from it.
"""

from __future__ import annotations

from typing import Any

from app.emulator.batch_request import normalize_request
from app.emulator.jobs import Job, build_predictions
from app.emulator.media import MediaSource, text_source, url_source

ALL_MODELS: dict[str, Any] = {
    "face": {"identify_faces": True, "facs": {}, "descriptions": {}},
    "prosody": {"identify_speakers": True},
    "burst": {},
    "language": {"sentiment": {}, "toxicity": {}, "identify_speakers": True},
    "ner": {},
    "facemesh": {},
}


def payload(urls: list[str], models: dict[str, Any], texts: list[str] | None = None) -> bytes:
    """The bytes GET /v0/batch/jobs/{id}/predictions would return for these URLs (and raw text)."""
    request = normalize_request({"urls": urls, "models": models, "text": texts or []}, [])
    sources: list[MediaSource] = [url_source(u, 1.0, 30.0) for u in urls]
    if texts:
        sources.append(text_source(texts))
    document, _, _ = build_predictions(Job.new(request, sources))
    return document


def three_hours() -> bytes:
    """The ingest bench payload: three one-hour videos, face at 3 fps plus prosody (~35k predictions)."""
    urls = [f"https://media.example.com/interview-{i}.mp4#duration=3600&faces=1" for i in range(3)]
    return payload(urls, {"face": {"fps_pred": 3}, "prosody": {}})


def one_hour() -> bytes:
    """One one-hour video, face at 3 fps plus prosody: the job the summary bench reads."""
    return payload(["https://media.example.com/keynote.mp4#duration=3600&faces=2"], {"face": {}, "prosody": {}})


def every_model() -> bytes:
    """One job touching every model and every source shape: a video, an archive of several files with a
    failed one, a failed download, and raw text."""
    return payload(
        [
            "https://media.example.com/panel.mp4#duration=40&faces=2&speakers=2",
            "https://media.example.com/clips.zip#files=4&duration=12&file_error",
            "https://media.example.com/missing.mp4#source_error",
        ],
        ALL_MODELS,
        texts=["Alice met Bob in Paris and was delighted.", "This is terrible, I hate waiting."],
    )
