"""Label sets Hume's models emit, in the order Hume emits them."""

from __future__ import annotations

# Face, prosody, vocal burst and EVI share these 48 names, alphabetical (HUME.md section 3.1).
EMOTIONS_48: tuple[str, ...] = (
    "Admiration", "Adoration", "Aesthetic Appreciation", "Amusement", "Anger", "Anxiety", "Awe",
    "Awkwardness", "Boredom", "Calmness", "Concentration", "Confusion", "Contemplation", "Contempt",
    "Contentment", "Craving", "Desire", "Determination", "Disappointment", "Disgust", "Distress",
    "Doubt", "Ecstasy", "Embarrassment", "Empathic Pain", "Entrancement", "Envy", "Excitement", "Fear",
    "Guilt", "Horror", "Interest", "Joy", "Love", "Nostalgia", "Pain", "Pride", "Realization",
    "Relief", "Romance", "Sadness", "Satisfaction", "Shame", "Surprise (negative)",
    "Surprise (positive)", "Sympathy", "Tiredness", "Triumph",
)  # fmt: skip

# The language model adds five; Hume's own order is unconfirmed, alphabetical merge assumed.
LANGUAGE_ONLY: tuple[str, ...] = ("Annoyance", "Disapproval", "Enthusiasm", "Gratitude", "Sarcasm")
EMOTIONS_53: tuple[str, ...] = tuple(sorted(EMOTIONS_48 + LANGUAGE_ONLY))

SENTIMENT: tuple[str, ...] = tuple(str(i) for i in range(1, 10))
TOXICITY: tuple[str, ...] = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")

# Hume never published its FACS 2.0 and face-description label strings; these are plausible
# stand-ins (standard FACS action units; everyday descriptors).
FACS: tuple[str, ...] = (
    "AU1 Inner Brow Raise", "AU2 Outer Brow Raise", "AU4 Brow Lowerer", "AU5 Upper Lid Raise",
    "AU6 Cheek Raise", "AU7 Lids Tight", "AU9 Nose Wrinkle", "AU10 Upper Lip Raiser",
    "AU11 Nasolabial Furrow Deepener", "AU12 Lip Corner Puller", "AU14 Dimpler",
    "AU15 Lip Corner Depressor", "AU16 Lower Lip Depress", "AU17 Chin Raiser", "AU18 Lip Pucker",
    "AU19 Tongue Show", "AU20 Lip Stretch", "AU22 Lip Funneler", "AU23 Lip Tightener",
    "AU24 Lip Presser", "AU25 Lips Part", "AU26 Jaw Drop", "AU27 Mouth Stretch", "AU28 Lips Suck",
    "AU32 Bite", "AU34 Puff", "AU37 Lip Wipe", "AU38 Nostril Dilate", "AU43 Eye Closure",
    "AU53 Head Up", "AU54 Head Down", "AU55 Head Tilt Left", "AU56 Head Tilt Right",
    "AU61 Eyes Left", "AU62 Eyes Right", "AU63 Eyes Up", "AU64 Eyes Down",
)  # fmt: skip
FACE_DESCRIPTIONS: tuple[str, ...] = (
    "Angry", "Bored", "Calm", "Concentrated", "Confused", "Disgusted", "Dreamy", "Excited",
    "Fearful", "Focused", "Frowning", "Happy", "Laughing", "Neutral", "Pensive", "Pouting",
    "Relaxed", "Sad", "Scared", "Shocked", "Sleepy", "Smiling", "Smug", "Surprised", "Tense",
    "Thinking", "Tired", "Worried",
)  # fmt: skip

# Hume: "67 descriptors, 30 call types and 37 onomatopoeia"; the strings were never published.
BURST_DESCRIPTIONS: tuple[str, ...] = (
    # 30 call types
    "Cough", "Cry", "Gasp", "Groan", "Grunt", "Hum", "Laugh", "Moan", "Mumble", "Pant", "Roar",
    "Scream", "Shriek", "Shout", "Sigh", "Sing", "Sniff", "Sniffle", "Snore", "Sob", "Squeal",
    "Whimper", "Whine", "Whistle", "Yawn", "Yell", "Yelp", "Chuckle", "Giggle", "Wail",
    # 37 onomatopoeia
    "Aah", "Aha", "Argh", "Aww", "Bah", "Boo", "Brr", "Eek", "Eh", "Ew", "Gah", "Ha", "Haha",
    "Hee", "Heh", "Hmm", "Huh", "Mhm", "Mm", "Mmm", "Nah", "Oh", "Ohh", "Ooh", "Oof", "Oops",
    "Ouch", "Ow", "Pfft", "Phew", "Psst", "Shh", "Tsk", "Ugh", "Uh", "Um", "Wow",
)  # fmt: skip

assert len(EMOTIONS_48) == 48
assert len(EMOTIONS_53) == 53
assert len(BURST_DESCRIPTIONS) == 67
