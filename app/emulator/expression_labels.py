"""Label sets of Hume's v1 Expression Measurement API (lowercase names, as v1 returns them).

Hume publishes the v1 audio list only as "415 expressions" (414 until `neutral` was added on
2026-10-20); the strings below are plausible stand-ins: the batch API's 53 emotions and 67 vocal
burst descriptors lowercased, `neutral`, then everyday affect, voice-act and vocal-sound words,
cut at 415 in a fixed order so every run of the emulator names the same set.
"""

from __future__ import annotations

from .labels import BURST_DESCRIPTIONS, EMOTIONS_48, EMOTIONS_53

_MORE_AUDIO = """
chuckling laughing giggling sighing sobbing crying groaning moaning gasping panting yawning
screaming shouting whispering humming singing sniffling coughing whimpering whining wailing
muttering mumbling stammering hesitation sarcasm irony teasing mockery flirtation playfulness
affection tenderness warmth friendliness politeness formality reassurance encouragement comfort
apology regret remorse pity compassion concern caring gratitude thankfulness appreciation
approval agreement acceptance trust confidence certainty assertiveness authority dominance
defiance resistance stubbornness insistence persuasion pleading begging urgency impatience
frustration irritation annoyance exasperation resentment bitterness hostility aggression rage
fury indignation outrage contempt scorn disdain condescension arrogance smugness superiority
self-satisfaction vanity modesty humility shyness timidity nervousness unease apprehension
worry dread panic terror alarm shock astonishment amazement wonder curiosity intrigue fascination
attentiveness focus alertness vigilance suspicion skepticism disbelief uncertainty indecision
puzzlement bewilderment perplexity hope optimism anticipation eagerness enthusiasm zeal passion
inspiration motivation ambition resolve perseverance patience composure serenity peacefulness
tranquility relaxation ease comfortableness coziness contentedness fulfillment gladness delight
glee cheerfulness happiness elation euphoria bliss jubilation exhilaration thrill giddiness
silliness whimsy humor wit mischief cheekiness sassiness boldness bravery courage daring
recklessness caution prudence restraint reluctance resignation defeat despair hopelessness
helplessness powerlessness vulnerability insecurity self-doubt loneliness isolation longing
yearning homesickness melancholy sorrow grief mourning heartbreak hurt sulking moodiness gloom
dejection discouragement disillusionment weariness exhaustion fatigue lethargy sluggishness
drowsiness sleepiness apathy indifference detachment aloofness coldness reserve seriousness
solemnity gravity earnestness sincerity honesty candor bluntness directness frankness sternness
strictness severity harshness impoliteness rudeness sneering taunting gloating boasting bragging
showing-off triumphance victory pride-in-others admiration-of-skill reverence respect deference
obedience submission surrender yielding compliance cooperation helpfulness generosity kindness
gentleness softness sweetness charm enchantment captivation infatuation lust sensuality intimacy
closeness belonging nostalgia-for-home sentimentality wistfulness reminiscence reflection
pensiveness thoughtfulness introspection rumination preoccupation distraction absent-mindedness
boredom-with-task tedium monotony disinterest dismissiveness rejection refusal denial objection
protest complaint grumbling nagging scolding lecturing warning threat intimidation menace
cruelty spite malice vindictiveness jealousy possessiveness greed craving-for-attention neediness
clinginess dependence independence self-reliance determination-to-win competitiveness rivalry
""".split()

AUDIO_EXPRESSIONS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*(n.lower() for n in EMOTIONS_53), *(n.lower() for n in BURST_DESCRIPTIONS), "neutral", *_MORE_AUDIO]
    )
)[:415]

VOICE_ATTRIBUTES: tuple[str, ...] = (
    "background music", "background noise", "breathy", "bright", "clear", "creaky", "dark", "deep",
    "distant", "echo", "fast", "gravelly", "high pitch", "hoarse", "husky", "loud", "low pitch",
    "melodic", "monotone", "muffled", "nasal", "quiet", "raspy", "resonant", "shaky", "shrill",
    "slow", "smooth", "soft", "strained", "tense", "thin", "warm", "whispered",
)  # fmt: skip

VIDEO_EXPRESSIONS: tuple[str, ...] = tuple(n.lower() for n in EMOTIONS_48)

VIDEO_DESCRIPTIONS: tuple[str, ...] = (
    "blink", "brow furrow", "brow raise", "cheek puff", "chin raise", "eyes closed", "frown",
    "gaze away", "grimace", "head tilt", "jaw drop", "lip bite", "lip press", "lip pucker",
    "mouth open", "nose wrinkle", "pout", "smile", "smirk", "sneer", "squint", "teeth showing",
    "tongue out", "wide-eyed",
)  # fmt: skip

assert len(AUDIO_EXPRESSIONS) == 415, len(AUDIO_EXPRESSIONS)
