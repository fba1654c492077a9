"""Deterministic, plausible scores: a generator seeded per (file, model, config), label scores that drift
around a per-track profile, and distributions over ordered levels."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import orjson

from .media import MediaFile, stable_hash

Json = dict[str, Any]


def seeded_rng(f: MediaFile, model: str, cfg: object) -> random.Random:
    return random.Random(stable_hash(f.seed_key, model, orjson.dumps(cfg, option=orjson.OPT_SORT_KEYS).decode()))


class Scorer:
    """Scores for one label set that wander around a per-track profile.

    A few labels dominate (as in real output, where most scores are small), and the profile
    shifts now and then so a timeline shows change rather than noise around a constant.
    """

    def __init__(self, rng: random.Random, names: Sequence[str], dominant: int = 4) -> None:
        self.rng = rng
        self.names = names
        self.profile = self._new_profile(dominant)
        self.home = list(self.profile)

    def _new_profile(self, dominant: int) -> list[float]:
        rnd = self.rng.random
        profile = [0.02 + 0.2 * rnd() ** 2 for _ in self.names]
        for _ in range(dominant):
            profile[self.rng.randrange(len(profile))] = 0.25 + 0.5 * rnd()
        return profile

    def drift(self) -> None:
        """Nudge one label, pulled back toward the track's home profile so long media does not
        wander off; now and then a different label becomes dominant (a change of mood)."""
        rng = self.rng
        i = rng.randrange(len(self.profile))
        if rng.random() < 0.02:
            self.home[i] = 0.25 + 0.5 * rng.random() if self.home[i] < 0.2 else 0.02 + 0.15 * rng.random()
        value = self.profile[i] + 0.3 * (self.home[i] - self.profile[i]) + (rng.random() - 0.5) * 0.3
        self.profile[i] = min(0.78, max(0.005, value))

    def scores(self) -> list[Json]:
        rnd = self.rng.random
        return [
            {"name": name, "score": base * (0.75 + 0.5 * rnd())}  # base <= 0.78 keeps this < 1
            for name, base in zip(self.names, self.profile, strict=True)
        ]


def normalised(rng: random.Random, names: Sequence[str], peak: int) -> list[Json]:
    """A distribution over ordered levels peaking near ``peak`` (sentiment 1..9)."""
    weights = [1.0 / (1.0 + abs(i - peak) ** 2 * (0.5 + rng.random())) for i in range(len(names))]
    total = sum(weights)
    return [{"name": n, "score": w / total} for n, w in zip(names, weights, strict=True)]
