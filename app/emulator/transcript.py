"""Deterministic fake speech: words with timings and speakers, shared by the audio models.

Prosody, language and NER all describe the same simulated speech, so their texts and times
line up the way they do in a real Hume payload.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_VOCAB = (
    "the a and to of in that it is was for on you he with as I they at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she do how "
    "their if will up other about out many then them these so some her would make like him into "
    "time has look two more write go see number no way could people my than first water been call "
    "who oil its now find long down day did get come made may part really think know feel honestly "
    "great project team today yesterday tomorrow happy sorry thanks maybe always never actually"
).split()

# Named entities sprinkled into speech so that the NER model has something to find.
ENTITIES: tuple[tuple[str, str], ...] = (
    ("Paris", "https://en.wikipedia.org/wiki/Paris"),
    ("London", "https://en.wikipedia.org/wiki/London"),
    ("New York", "https://en.wikipedia.org/wiki/New_York_City"),
    ("Google", "https://en.wikipedia.org/wiki/Google"),
    ("Microsoft", "https://en.wikipedia.org/wiki/Microsoft"),
    ("Monday", "https://en.wikipedia.org/wiki/Monday"),
    ("Shakespeare", "https://en.wikipedia.org/wiki/William_Shakespeare"),
    ("Japan", "https://en.wikipedia.org/wiki/Japan"),
    ("Hume", "https://en.wikipedia.org/wiki/David_Hume"),
    ("Amazon", "https://en.wikipedia.org/wiki/Amazon_(company)"),
)


@dataclass(frozen=True)
class Word:
    text: str
    begin: float
    end: float
    speaker: int
    sentence: int  # index of the sentence it belongs to
    turn: int  # index of the speaker turn it belongs to
    utterance: int  # index of the pause-delimited utterance
    pos_begin: int  # character offsets in the joined transcript (end exclusive)
    pos_end: int
    confidence: float


@dataclass(frozen=True)
class Transcript:
    words: tuple[Word, ...]
    text: str


def make_transcript(seed: int, duration_s: float, num_speakers: int) -> Transcript:
    """Speech at about 2.5 words/s with sentence pauses and speaker turns, covering the media."""
    rng = random.Random(seed)
    words: list[Word] = []
    t = 0.2 + rng.random() * 0.8
    sentence = turn = utterance = 0
    speaker = 0
    pos = 0
    sentences_left_in_turn = rng.randint(1, 4)
    while t < duration_s - 0.3:
        n_words = rng.randint(4, 14)
        entity_at = rng.randrange(n_words) if rng.random() < 0.3 else -1
        for i in range(n_words):
            if entity_at == i:
                token = ENTITIES[rng.randrange(len(ENTITIES))][0]
            else:
                token = _VOCAB[rng.randrange(len(_VOCAB))]
            if i == 0:
                token = token[0].upper() + token[1:]
            if i == n_words - 1:
                token += "?" if rng.random() < 0.2 else "."
            length = 0.12 + 0.06 * len(token) * (0.7 + 0.6 * rng.random())
            end = min(t + length, duration_s)
            if end - t < 0.05:
                break
            words.append(
                Word(
                    text=token,
                    begin=round(t, 3),
                    end=round(end, 3),
                    speaker=speaker,
                    sentence=sentence,
                    turn=turn,
                    utterance=utterance,
                    pos_begin=pos,
                    pos_end=pos + len(token),
                    confidence=round(0.75 + 0.25 * rng.random(), 6),
                )
            )
            pos += len(token) + 1
            t = end + 0.03 + rng.random() * 0.15
        pause = 0.25 + rng.random() * 1.0
        t += pause
        sentence += 1
        # Long pauses end an utterance, the way a speech segmenter would split it.
        if pause > 0.6:
            utterance += 1
        sentences_left_in_turn -= 1
        if sentences_left_in_turn == 0:
            sentences_left_in_turn = rng.randint(1, 4)
            if num_speakers > 1:
                speaker = (speaker + 1 + rng.randrange(num_speakers - 1)) % num_speakers
                turn += 1
                utterance += 1 if pause <= 0.6 else 0
    return Transcript(words=tuple(words), text=" ".join(w.text for w in words))


_TOKEN = re.compile(r"\S+")


def transcript_from_text(text: str) -> Transcript:
    """Tokenise raw text (no timings) so language/NER get positions into the caller's string."""
    words: list[Word] = []
    sentence = 0
    paragraph = 0
    last_end = 0
    for m in _TOKEN.finditer(text):
        if "\n\n" in text[last_end : m.start()]:
            paragraph += 1
        token = m.group()
        words.append(
            Word(
                text=token,
                begin=0.0,
                end=0.0,
                speaker=0,
                sentence=sentence,
                turn=paragraph,
                utterance=sentence,
                pos_begin=m.start(),
                pos_end=m.end(),
                confidence=1.0,
            )
        )
        if token[-1] in ".!?":
            sentence += 1
        last_end = m.end()
    return Transcript(words=tuple(words), text=text)
