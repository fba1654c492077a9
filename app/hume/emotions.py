"""Canonical emotion orders per model (HUME.md section 3); the migration seeds the emotion table from these."""

from __future__ import annotations

EXPRESSIONS_48: tuple[str, ...] = (
    "Admiration", "Adoration", "Aesthetic Appreciation", "Amusement", "Anger", "Anxiety", "Awe",
    "Awkwardness", "Boredom", "Calmness", "Concentration", "Confusion", "Contemplation", "Contempt",
    "Contentment", "Craving", "Desire", "Determination", "Disappointment", "Disgust", "Distress", "Doubt",
    "Ecstasy", "Embarrassment", "Empathic Pain", "Entrancement", "Envy", "Excitement", "Fear", "Guilt",
    "Horror", "Interest", "Joy", "Love", "Nostalgia", "Pain", "Pride", "Realization", "Relief", "Romance",
    "Sadness", "Satisfaction", "Shame", "Surprise (negative)", "Surprise (positive)", "Sympathy",
    "Tiredness", "Triumph",
)  # fmt: skip

LANGUAGE_ONLY: tuple[str, ...] = ("Annoyance", "Disapproval", "Enthusiasm", "Gratitude", "Sarcasm")

# Alphabetical merge: the most likely official order (HUME.md 3.2); unknown names are appended at ingest.
EXPRESSIONS_53: tuple[str, ...] = tuple(sorted(EXPRESSIONS_48 + LANGUAGE_ONLY))

MODELS: tuple[str, ...] = ("face", "prosody", "burst", "language", "ner", "facemesh")

CANONICAL: dict[str, tuple[str, ...]] = {
    "face": EXPRESSIONS_48,
    "prosody": EXPRESSIONS_48,
    "burst": EXPRESSIONS_48,
    "language": EXPRESSIONS_53,
    "ner": EXPRESSIONS_53,
    "facemesh": (),
}
