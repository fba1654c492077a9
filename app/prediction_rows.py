"""Predictions as every part of the service sees them, whichever Hume API produced them: the rows
features hand to the store. Neutral on purpose: the store never sees Hume's wire types."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec


class PredictionFormatError(ValueError):
    """Predictions that cannot be read or stored (not Hume's format, or values out of range)."""


class EmotionScore(msgspec.Struct, gc=False):
    name: str
    score: float


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One prediction, flattened; `scores` keeps Hume's (name, score) pairs for the store to order."""

    source_index: int
    file: str | None
    model: str
    group_id: str | None
    frame: int | None
    time_begin: float | None
    time_end: float | None
    prob: float | None
    box: list[float] | None
    text: str | None
    position_begin: int | None
    position_end: int | None
    confidence: float | None
    speaker_confidence: float | None
    scores: list[EmotionScore]
    extras: bytes | None
    """A JSON object of everything else Hume said (facs, descriptions, sentiment, toxicity, ner)."""
