"""Decode Hume batch predictions (GET /v0/batch/jobs/{id}/predictions, or a callback's `predictions`).

The structure is decoded into typed structs, but every score list stays a `msgspec.Raw` slice of the
input until the row is written: a one-hour payload never becomes millions of Python dicts. Unknown
fields are ignored and absent ones default, because real payloads carry fields the SDK schema lacks
(`file_type`, `user_id`) and older ones miss fields it has (HUME.md 1.4, 6.6).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from app.core.prediction_rows import EmotionScore, PredictionFormatError, PredictionRow

# msgspec cannot decode `Raw | None`; a Raw holding `null` stands for absent.
NULL = msgspec.Raw(b"null")


def is_present(raw: msgspec.Raw) -> bool:
    # Compared in place: `bytes(raw)` would copy a callback's whole predictions (82 MB for three hours).
    return len(raw) > 0 and raw != NULL


class Interval(msgspec.Struct, gc=False):
    begin: float | None = None
    end: float | None = None


class Box(msgspec.Struct, gc=False):
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


class RawPrediction(msgspec.Struct, gc=False):
    emotions: msgspec.Raw = msgspec.Raw(b"[]")
    frame: int | None = None
    time: float | Interval | None = None
    prob: float | None = None
    box: Box | None = None
    text: str | None = None
    position: Interval | None = None
    confidence: float | None = None
    speaker_confidence: float | None = None
    facs: msgspec.Raw = NULL
    descriptions: msgspec.Raw = NULL
    sentiment: msgspec.Raw = NULL
    toxicity: msgspec.Raw = NULL
    entity: str | None = None
    entity_confidence: float | None = None
    support: float | None = None
    uri: str | None = None
    link_word: str | None = None


class Group(msgspec.Struct):
    id: str | None = None
    predictions: list[RawPrediction] = []


class ModelResult(msgspec.Struct):
    metadata: msgspec.Raw = NULL
    grouped_predictions: list[Group] = []


class FilePrediction(msgspec.Struct):
    file: str | None = None
    file_type: str | None = None
    models: dict[str, ModelResult | None] = {}


class FileError(msgspec.Struct):
    file: str | None = None
    message: str | None = None


class Results(msgspec.Struct):
    predictions: list[FilePrediction] = []
    errors: list[FileError] = []


class SourceInfo(msgspec.Struct):
    type: str = "url"
    url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    md5sum: str | None = None


class SourceResult(msgspec.Struct):
    source: SourceInfo = msgspec.field(default_factory=SourceInfo)
    results: Results | None = None
    error: str | None = None


_DOCUMENT = msgspec.json.Decoder(list[SourceResult])
_SCORES = msgspec.json.Decoder(list[EmotionScore])


# An escaped NUL (`\u0000`) not preceded by an odd run of backslashes (which would make it literal text).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
_ANY_NUL_ESCAPE = re.compile(rb"\\u0000")

Buffer = bytes | bytearray | memoryview | msgspec.Raw


def _without_nul(document: Buffer) -> Buffer:
    """NUL characters become U+FFFD: Postgres text and jsonb cannot hold them, and Hume echoes submitted
    text, so one would otherwise fail the whole job. The search runs on the buffer as given (a regex scans
    a memoryview without copying it: 57 ms for 88 MB here), so a callback's predictions, a slice of a body
    of up to hundreds of MB, are not copied unless a NUL is actually there."""
    if _ANY_NUL_ESCAPE.search(memoryview(document)) is None:
        return document
    return _NUL_ESCAPE.sub(rb"\1\\ufffd", bytes(document))


def decode(document: Buffer) -> list[SourceResult]:
    """Decode a predictions array (any buffer: a callback's `predictions` Raw is decoded in place, without a
    copy); raises PredictionFormatError naming what is wrong."""
    try:
        return _DOCUMENT.decode(_without_nul(document))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for bad UTF-8
        raise PredictionFormatError(f"not a Hume predictions array: {exc}") from None


def decode_scores(raw: msgspec.Raw) -> list[EmotionScore]:
    try:
        return _SCORES.decode(raw)
    except msgspec.DecodeError as exc:
        raise PredictionFormatError(f"bad emotion scores: {exc}") from None


_EXTRA_RAW = ("facs", "descriptions", "sentiment", "toxicity")
_EXTRA_NER = ("entity", "entity_confidence", "support", "uri", "link_word")
_ENCODE = msgspec.json.encode


def _extras(pred: RawPrediction) -> bytes | None:
    parts: list[bytes] = []
    for name in _EXTRA_RAW:
        value = getattr(pred, name)
        if is_present(value):
            parts.append(b'"' + name.encode() + b'":' + bytes(value))
    for name in _EXTRA_NER:
        value = getattr(pred, name)
        if value is not None:
            parts.append(b'"' + name.encode() + b'":' + _ENCODE(value))
    return b"{" + b",".join(parts) + b"}" if parts else None


def rows(sources: list[SourceResult]) -> Iterator[PredictionRow]:
    """Every prediction of every source, in document order. A model we do not know is kept like the others
    (its emotion names extend the order at ingest): nothing Hume said is dropped."""
    for index, source in enumerate(sources):
        if source.results is None:
            continue
        for file_pred in source.results.predictions:
            for model, result in file_pred.models.items():
                if result is None:
                    continue
                for group in result.grouped_predictions:
                    for pred in group.predictions:
                        yield _row(index, file_pred.file, model, group.id, pred)


def _row(index: int, file: str | None, model: str, group_id: str | None, pred: RawPrediction) -> PredictionRow:
    time = pred.time
    if isinstance(time, Interval):
        begin, end = time.begin, time.end
    else:
        begin, end = time, time
    box = pred.box
    position = pred.position
    return PredictionRow(
        source_index=index,
        file=file,
        model=model,
        group_id=group_id,
        frame=pred.frame,
        time_begin=begin,
        time_end=end,
        prob=pred.prob,
        box=[box.x, box.y, box.w, box.h] if box is not None else None,
        text=pred.text,
        position_begin=int(position.begin) if position and position.begin is not None else None,
        position_end=int(position.end) if position and position.end is not None else None,
        confidence=pred.confidence,
        speaker_confidence=pred.speaker_confidence,
        scores=decode_scores(pred.emotions),
        extras=_extras(pred),
    )


def source_files(source: SourceResult) -> list[dict[str, Any]]:
    """The files Hume found in a source (several for an archive), with per-model metadata."""
    if source.results is None:
        return []
    out: list[dict[str, Any]] = []
    for fp in source.results.predictions:
        metadata = {
            model: msgspec.json.decode(bytes(result.metadata))
            for model, result in fp.models.items()
            if result is not None and is_present(result.metadata)
        }
        out.append({"file": fp.file, "file_type": fp.file_type, "metadata": metadata})
    return out


def file_errors(source: SourceResult) -> list[dict[str, Any]]:
    if source.results is None:
        return []
    return [{"file": e.file, "message": e.message} for e in source.results.errors]
