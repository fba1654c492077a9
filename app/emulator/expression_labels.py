"""The measurement vocabularies of Hume's v1 Expression Measurement API, at Hume's documented sizes.

HUME-V1-FACTS §7: audio `expressions` 415 names (414 until `neutral` was added on 2026-10-20),
`voice_attributes` 190, video `expressions` 48, video `descriptions` 27; all lowercase. Only a few
names of each list are documented (/work/shared/hume/*.partial.json, sources in vocabularies.json);
those are used verbatim. The rest of each list is filled with names that cannot be mistaken for Hume's
("emulated expression 017"), so a client that hard-codes a name Hume never documented fails here, and a
client that assumes it knows every name (Hume: "clients must accept unknown new names", §7) is caught too.
"""

from __future__ import annotations

AUDIO_EXPRESSION_COUNT = 415  # HUME-V1-FACTS §7 (AM; changelog 2026-10-20)
VOICE_ATTRIBUTE_COUNT = 190  # HUME-V1-FACTS §7 (overview)
VIDEO_EXPRESSION_COUNT = 48  # HUME-V1-FACTS §7 (VM)
VIDEO_DESCRIPTION_COUNT = 27  # HUME-V1-FACTS §7 (overview)

# Verbatim from Hume's docs and the SDK's docstrings (audio-expressions.partial.json).
DOCUMENTED_AUDIO_EXPRESSIONS: tuple[str, ...] = (
    "abhorrence", "admiration", "adoration", "amusement", "anger", "chuckling", "dumbfoundedness",
    "eagerness", "feeling uplifted", "feeling upset", "interest", "joy", "neutral", "pleasure", "pondering",
)  # fmt: skip
# voice-attributes.partial.json
DOCUMENTED_VOICE_ATTRIBUTES: tuple[str, ...] = ("background music", "calm", "clear", "fast", "husky", "monotone")
# video-expressions.partial.json ("aesthetic appreciation" is documented without its list, so left out)
DOCUMENTED_VIDEO_EXPRESSIONS: tuple[str, ...] = (
    "admiration", "adoration", "amusement", "concentration", "contemplation", "contempt", "entrancement",
    "interest", "joy", "realization", "surprise (positive)",
)  # fmt: skip
# video-descriptions.partial.json
DOCUMENTED_VIDEO_DESCRIPTIONS: tuple[str, ...] = ("grin", "jaw drop", "smile", "wide-eyed")


def _filled(documented: tuple[str, ...], count: int, kind: str) -> tuple[str, ...]:
    """`documented`, then "emulated <kind> NNN" up to `count`, alphabetical as Hume's tables are (§7)."""
    width = len(str(count))
    generated = (f"emulated {kind} {i:0{width}d}" for i in range(1, count - len(documented) + 1))
    return tuple(sorted([*documented, *generated]))


AUDIO_EXPRESSIONS = _filled(DOCUMENTED_AUDIO_EXPRESSIONS, AUDIO_EXPRESSION_COUNT, "expression")
VOICE_ATTRIBUTES = _filled(DOCUMENTED_VOICE_ATTRIBUTES, VOICE_ATTRIBUTE_COUNT, "voice attribute")
VIDEO_EXPRESSIONS = _filled(DOCUMENTED_VIDEO_EXPRESSIONS, VIDEO_EXPRESSION_COUNT, "face expression")
VIDEO_DESCRIPTIONS = _filled(DOCUMENTED_VIDEO_DESCRIPTIONS, VIDEO_DESCRIPTION_COUNT, "face description")
