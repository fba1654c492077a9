"""Hume v1 results as the service's neutral prediction rows (model `prosody` for audio, `face` for video).

v1 lists only the expressions it judged present, in lowercase; each row carries exactly those, so the
store keeps absent ones as NULL (never a made-up 0). Times are made absolute in the medium: a chunk's
`start_ms` is added to an audio window, a frame's own timestamp is used for an image.

A one-hour job holds ~100 000 scores. The stored responses are decoded into typed structs with msgspec
(only the fields a row needs; what goes to `extras` stays the raw JSON it arrived as and is spliced, never
decoded and encoded again), and scores are passed on as the names and values lists (`ListedScores`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from app.core.prediction_rows import ListedScores, PredictionFormatError, PredictionRow

PROSODY = "prosody"
FACE = "face"
_NULL = msgspec.Raw(b"null")
_EMPTY_LIST = msgspec.Raw(b"[]")


class _Expression(msgspec.Struct, gc=False):
    name: str
    probability: float


class _AudioMeasurement(msgspec.Struct, gc=False):
    utterance_id: str | int
    audio_start_ms: float
    audio_end_ms: float
    trigger: msgspec.Raw = _NULL
    expressions: list[_Expression] | None = None
    voice_attributes: msgspec.Raw = _EMPTY_LIST


class _AudioResult(msgspec.Struct, gc=False):
    measurements: list[_AudioMeasurement] = []


class _Face(msgspec.Struct, gc=False):
    """A face Hume detected; only one with a `face_id` was measured (the others carry nulls)."""

    bbox: tuple[float, float, float, float] | None = None
    confidence: float | None = None
    face_id: str | int | None = None
    expressions: list[_Expression] | None = None
    descriptions: msgspec.Raw = _EMPTY_LIST


class _Image(msgspec.Struct, gc=False):
    faces: list[_Face] = []


class _VideoResult(msgspec.Struct, gc=False):
    measurements: list[_Image] = []


_AUDIO = msgspec.json.Decoder(_AudioResult)
_VIDEO = msgspec.json.Decoder(_VideoResult)


def _scores(items: list[_Expression] | None) -> ListedScores:
    if not items:
        return ListedScores([], [])
    return ListedScores([e.name for e in items], [e.probability for e in items])


def _list(raw: msgspec.Raw) -> bytes:
    """A raw JSON list as it came, `null` read as the empty list."""
    data = bytes(raw)
    return b"[]" if data == b"null" else data


def audio_rows(source_index: int, file: str | None, start_ms: int, result: str | bytes) -> Iterator[PredictionRow]:
    """One row per measurement of a stored audio response (JSON text); the group is the utterance (made
    unique across chunks by its start)."""
    try:
        decoded = _AUDIO.decode(result)
    except msgspec.DecodeError as exc:
        raise PredictionFormatError(f"a v1 audio result is not in Hume's format: {exc}") from None
    for m in decoded.measurements:
        yield PredictionRow(
            source_index=source_index, file=file, model=PROSODY, group_id=f"{start_ms}:{m.utterance_id}",
            frame=None, time_begin=(start_ms + int(m.audio_start_ms)) / 1000,
            time_end=(start_ms + int(m.audio_end_ms)) / 1000, prob=None, box=None, text=None,
            position_begin=None, position_end=None, confidence=None, speaker_confidence=None,
            scores=_scores(m.expressions),
            extras=b'{"trigger":' + bytes(m.trigger) + b',"voice_attributes":' + _list(m.voice_attributes) + b"}",
        )  # fmt: skip


def video_rows(
    source_index: int, file: str | None, frames: Sequence[Sequence[int]], result: str | bytes
) -> Iterator[PredictionRow]:
    """One row per measured face of a stored video response (JSON text); `frames[i]` is (source frame,
    timestamp ms) of the i-th image sent. Faces Hume detected but did not measure (no face_id) carry no
    scores and are left out."""
    try:
        decoded = _VIDEO.decode(result)
    except msgspec.DecodeError as exc:
        raise PredictionFormatError(f"a v1 video result is not in Hume's format: {exc}") from None
    if len(decoded.measurements) > len(frames):
        raise PredictionFormatError("a v1 video result has more measurements than images were sent")
    for m, (frame, at_ms) in zip(decoded.measurements, frames, strict=False):
        for face in m.faces:
            if face.face_id is None:
                continue
            if face.bbox is None or face.confidence is None:
                raise PredictionFormatError("a measured face in a v1 result has no bbox or confidence")
            x0, y0, x1, y1 = face.bbox
            yield PredictionRow(
                source_index=source_index, file=file, model=FACE, group_id=f"face_{face.face_id}",
                frame=int(frame), time_begin=at_ms / 1000, time_end=at_ms / 1000, prob=face.confidence,
                box=[x0, y0, x1 - x0, y1 - y0], text=None, position_begin=None, position_end=None,
                confidence=None, speaker_confidence=None, scores=_scores(face.expressions),
                extras=b'{"descriptions":' + _list(face.descriptions) + b"}",
            )  # fmt: skip
