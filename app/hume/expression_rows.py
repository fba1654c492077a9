"""Hume v1 results as the service's neutral prediction rows (model `prosody` for audio, `face` for video).

v1 lists only the expressions it judged present, in lowercase; each row carries exactly those, so the
store keeps absent ones as NULL (never a made-up 0). Times are made absolute in the medium: a chunk's
`start_ms` is added to an audio window, a frame's own timestamp is used for an image.

A one-hour job holds ~100 000 scores, so they are passed on as the parsed lists' names and values
(`ListedScores`), not an object each; the store checks the names when it places them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

import orjson

from app.prediction_rows import ListedScores, PredictionFormatError, PredictionRow

_NAME = itemgetter("name")
_PROBABILITY = itemgetter("probability")
PROSODY = "prosody"
FACE = "face"


def _scores(items: Sequence[dict[str, Any]] | None) -> ListedScores:
    if not items:
        return ListedScores([], [])
    return ListedScores(list(map(_NAME, items)), list(map(_PROBABILITY, items)))


def audio_rows(source_index: int, file: str | None, start_ms: int, result: dict[str, Any]) -> Iterator[PredictionRow]:
    """One row per measurement; the group is the utterance (made unique across chunks by its start)."""
    try:
        for m in result.get("measurements", ()):
            begin = (start_ms + int(m["audio_start_ms"])) / 1000
            extras = {"trigger": m.get("trigger"), "voice_attributes": m.get("voice_attributes") or []}
            yield PredictionRow(
                source_index=source_index, file=file, model=PROSODY,
                group_id=f"{start_ms}:{m['utterance_id']}", frame=None,
                time_begin=begin, time_end=(start_ms + int(m["audio_end_ms"])) / 1000, prob=None, box=None,
                text=None, position_begin=None, position_end=None, confidence=None, speaker_confidence=None,
                scores=_scores(m.get("expressions")), extras=orjson.dumps(extras),
            )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictionFormatError(f"a v1 audio result is not in Hume's format: {exc!r}") from None


def video_rows(
    source_index: int, file: str | None, frames: Sequence[Sequence[int]], result: dict[str, Any]
) -> Iterator[PredictionRow]:
    """One row per measured face; `frames[i]` is (source frame, timestamp ms) of the i-th image sent.
    Faces Hume detected but did not measure (no face_id) carry no scores and are left out."""
    try:
        for i, m in enumerate(result.get("measurements", ())):
            frame, at_ms = frames[i]
            for face in m.get("faces", ()):
                if face.get("face_id") is None:
                    continue
                x0, y0, x1, y1 = map(float, face["bbox"])
                extras = {"descriptions": face.get("descriptions") or []}
                yield PredictionRow(
                    source_index=source_index, file=file, model=FACE, group_id=f"face_{face['face_id']}",
                    frame=int(frame), time_begin=at_ms / 1000, time_end=at_ms / 1000,
                    prob=float(face["confidence"]), box=[x0, y0, x1 - x0, y1 - y0], text=None,
                    position_begin=None, position_end=None, confidence=None, speaker_confidence=None,
                    scores=_scores(face.get("expressions")), extras=orjson.dumps(extras),
                )  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PredictionFormatError(f"a v1 video result is not in Hume's format: {exc!r}") from None
