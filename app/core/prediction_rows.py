"""Predictions as every part of the service sees them, whichever Hume API produced them: the rows
features hand to the store. Neutral on purpose: the store never sees Hume's wire types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import msgspec


class PredictionFormatError(ValueError):
    """Predictions that cannot be read or stored (not Hume's format, or values out of range)."""


class EmotionScore(msgspec.Struct, gc=False):
    name: str
    score: float


class ListedScores(Sequence[EmotionScore]):
    """Scores of an API that lists only what it judged present (v1): names and values side by side, as
    they were parsed. Two plain lists instead of an object per score, because a one-hour job has ~100 000
    of them; the store reads the lists, anything else may read it as the sequence of scores it is."""

    __slots__ = ("names", "values")

    def __init__(self, names: list[str], values: list[float]) -> None:
        self.names = names
        self.values = values

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> EmotionScore: ...
    @overload
    def __getitem__(self, index: slice) -> list[EmotionScore]: ...
    def __getitem__(self, index: int | slice) -> EmotionScore | list[EmotionScore]:
        if isinstance(index, slice):
            return [EmotionScore(n, v) for n, v in zip(self.names[index], self.values[index], strict=True)]
        return EmotionScore(self.names[index], self.values[index])

    def __repr__(self) -> str:
        return f"ListedScores({self.names!r}, {self.values!r})"


class PredictionRow(msgspec.Struct, frozen=True, gc=False):
    """One prediction, flattened; `scores` keeps Hume's names with their scores for the store to order.

    A struct, not a frozen dataclass: a job builds one per prediction, and a frozen dataclass's `__init__`
    sets each of the 16 fields through `object.__setattr__` (a tenth of a one-hour v1 job's ingest). Not
    tracked by the collector (`gc=False`): nothing it holds can refer back to it."""

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
    scores: Sequence[EmotionScore]
    """Hume's (name, score) pairs, or only the listed ones of a sparse API; names absent are not scored."""
    extras: bytes | None
    """A JSON object of everything else Hume said (facs, descriptions, sentiment, toxicity, ner)."""
