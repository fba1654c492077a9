"""Each model's canonical emotion order: the positions of its emotion names in a prediction's `scores` array,
shared by every job, extended under a per-model lock when a job brings a name not seen before."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.prediction_rows import EmotionScore, ListedScores, PredictionFormatError


@dataclass(frozen=True, slots=True)
class Plan:
    """Where each of a score list's entries goes in the model's array."""

    width: int
    slots: tuple[int, ...]
    identity: bool
    """Scores arrive in canonical order with nothing missing: copied as they are."""


class EmotionOrder:
    """Maps Hume's (name, score) lists to arrays in each model's canonical order.

    Real lists can come in any order, so scores are placed by name; a name we have never seen
    extends the model's order (stored in the emotion table) rather than being dropped. An array is
    as long as the highest position it fills: positions after it are simply not scored.
    """

    def __init__(self, positions: dict[str, dict[str, int]]) -> None:
        self.positions = positions
        self._plans: dict[tuple[str, tuple[str, ...]], Plan] = {}
        self.locked: set[str] = set()
        """Models whose order this transaction holds the lock of: new names get positions in memory."""
        self.added: dict[str, list[str]] = {}
        """Names given positions in memory, to be inserted before the transaction ends (`store_added`)."""
        self._next: dict[str, int] = {}

    def settle(self) -> None:
        """The transaction that used this order committed (its model locks are gone): the order may serve the
        next one, as positions once stored never change; a name new to it is locked and read again first."""
        self.locked.clear()

    def lock(self, model: str, stored: dict[str, int]) -> None:
        """The model's order as stored, read under its lock: new names go after the last position."""
        known = self.positions.setdefault(model, {})
        known.update(stored)
        self._next[model] = max(known.values(), default=-1) + 1
        self.locked.add(model)

    def admit(self, model: str, names: Sequence[str]) -> bool:
        """Give the names not in a locked model's order the next positions; False if the model is not locked."""
        if model not in self.locked:
            return False
        if not all(isinstance(n, str) for n in names):
            raise PredictionFormatError(f"emotion names of {model} that are not text: {list(names)[:3]!r}")
        known = self.positions.setdefault(model, {})
        added = self.added.setdefault(model, [])
        for name in names:
            if name not in known:
                known[name] = self._next[model]
                self._next[model] += 1
                added.append(name)
        return True

    def names(self, model: str) -> list[str]:
        known = self.positions.get(model, {})
        ordered = [""] * (max(known.values(), default=-1) + 1)
        for name, position in known.items():
            ordered[position] = name
        return ordered

    def unknown(self, model: str, scores: Sequence[EmotionScore]) -> list[str]:
        known = self.positions.get(model, {})
        names = scores.names if isinstance(scores, ListedScores) else [s.name for s in scores]
        if not all(isinstance(n, str) for n in names):
            raise PredictionFormatError(f"emotion names of {model} that are not text: {names[:3]!r}")
        return list(dict.fromkeys(n for n in names if n not in known))

    def slots(self, model: str, names: Sequence[str]) -> list[int] | None:
        """Positions of listed names, or None when one is not in the order yet. Not cached like `plan`:
        a sparse API's name sets are nearly all different, so a cache would only grow."""
        try:
            known = self.positions[model]
            return [known[n] for n in names]
        except KeyError:
            if self.admit(model, names):
                return [self.positions[model][n] for n in names]
            return None
        except TypeError:
            return None

    def plan(self, model: str, scores: Sequence[EmotionScore]) -> Plan | None:
        """The placement for this list of names, or None when a name is not in the order yet."""
        names = tuple(s.name for s in scores)
        key = (model, names)
        plan = self._plans.get(key)
        if plan is None:
            known = self.positions.get(model, {})
            if any(n not in known for n in names):
                if not self.admit(model, names):
                    return None
                known = self.positions[model]
            slots = tuple(known[n] for n in names)
            width = max(slots, default=-1) + 1
            # A name listed twice keeps its last score, as a JSON object would.
            plan = Plan(width, slots, slots == tuple(range(width)))
            self._plans[key] = plan
        return plan

    def place(self, model: str, scores: Sequence[EmotionScore]) -> list[float | None]:
        """Scores in canonical positions (None where this list has no score); every name must be known."""
        plan = self.plan(model, scores)
        if plan is None:
            raise KeyError(f"unknown emotion names for {model}: {self.unknown(model, scores)}")
        out: list[float | None] = [None] * plan.width
        for slot, score in zip(plan.slots, scores, strict=True):
            out[slot] = score.score
        return out


async def load_emotion_order(session: AsyncSession) -> EmotionOrder:
    positions: dict[str, dict[str, int]] = {}
    rows = await session.execute(text("SELECT model, position, name FROM emotion ORDER BY model, position"))
    for model, position, name in rows:
        positions.setdefault(model, {})[name] = position
    return EmotionOrder(positions)


async def lock_emotion_order(session: AsyncSession, order: EmotionOrder, model: str) -> None:
    """Take a model's order for the rest of the transaction, re-read under the lock, so that two jobs meeting
    the same new name agree on its position; from then on new names are placed in memory (`admit`)
    and inserted by `store_added` in one statement, so a load stops its COPY at most once per model."""
    if model in order.locked:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('emotion:' || :m))"), {"m": model})
    rows = await session.execute(text("SELECT name, position FROM emotion WHERE model = :m"), {"m": model})
    order.lock(model, {name: int(position) for name, position in rows})


async def store_added(session: AsyncSession, order: EmotionOrder) -> None:
    for model, added in order.added.items():
        if added:
            known = order.positions[model]
            await session.execute(
                text(
                    "INSERT INTO emotion (model, position, name)"
                    " SELECT :m, p, n FROM unnest(CAST(:ps AS smallint[]), CAST(:ns AS text[])) AS t(p, n)"
                ),
                {"m": model, "ps": [known[n] for n in added], "ns": added},
            )
        added.clear()
