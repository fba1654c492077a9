"""Generators of plausible, deterministic predictions, one per Hume model.

Every generator seeds its own ``random.Random`` from (file seed key, model, model config), so
the same URL with the same settings always predicts the same values, while a different model
or setting draws independently. Scores stay within 0..1 and drift smoothly over time the way
real expressions do; every label of the model is listed in Hume's order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from .labels import (
    BURST_DESCRIPTIONS,
    EMOTIONS_48,
    EMOTIONS_53,
    FACE_DESCRIPTIONS,
    FACS,
    SENTIMENT,
    TOXICITY,
)
from .media import MediaFile, stable_hash
from .scoring import Json, Scorer, normalised, seeded_rng
from .transcript import ENTITIES, Transcript, Word, make_transcript, transcript_from_text

_ENTITY_URI = dict(ENTITIES)


# ---------------------------------------------------------------- face & facemesh


def _num(cfg: Json, key: str, default: float) -> float:
    value = cfg.get(key)
    return float(value) if isinstance(value, int | float) else default


def _face_frames(f: MediaFile, fps_pred: float) -> list[tuple[int, float]]:
    """(frame, time) pairs: every ``round(native / fps_pred)``-th frame (0 = every frame).

    Hume steps whole frames (the real payload has frames 230, 240, 250 at 29.97 fps), so the
    effective rate is slightly off ``fps_pred`` and ``time`` is ``frame / native fps``.
    """
    if f.kind == "image":
        return [(0, 0.0)]
    native = f.native_fps
    step = 1 if fps_pred <= 0 else max(1, round(native / fps_pred))
    return [(frame, frame / native) for frame in range(0, int(f.duration_s * native), step)]


def _face_tracks(f: MediaFile, frames: list[tuple[int, float]], rng: random.Random) -> list[int]:
    """Which face is on screen in each sampled frame: shots of 2-10 s, one face per shot."""
    track: list[int] = []
    shot_end = -1.0
    current = 0
    for _, t in frames:
        if t >= shot_end:
            current = rng.randrange(f.num_faces)
            shot_end = t + 2 + rng.random() * 8
        track.append(current)
    return track


def face(f: MediaFile, cfg: Json) -> Json | None:
    if f.kind not in ("video", "image"):
        return None
    rng = seeded_rng(f, "face", cfg)
    frames = _face_frames(f, _num(cfg, "fps_pred", 3.0))
    tracks = _face_tracks(f, frames, rng)
    threshold = _num(cfg, "prob_threshold", 0.99)
    min_size = float(cfg.get("min_face_size") or 60)
    width, height = (1920.0, 1080.0)  # frame size assumed for boxes
    scorers = [Scorer(rng, EMOTIONS_48) for _ in range(f.num_faces)]
    facs = [Scorer(rng, FACS, 6) for _ in range(f.num_faces)] if cfg.get("facs") is not None else None
    descs = (
        [Scorer(rng, FACE_DESCRIPTIONS, 3) for _ in range(f.num_faces)] if cfg.get("descriptions") is not None else None
    )
    boxes = []
    for k in range(f.num_faces):
        w = max(min_size, 100 + rng.random() * 200)
        if f.faces_together:
            # Side by side, like a panel: each face keeps its own slot.
            x = (k + 0.5) * width / f.num_faces - w / 2
        else:
            x = rng.random() * (width - w)
        boxes.append([max(0.0, x), rng.random() * (height - w * 1.3), w, w * 1.28])
    groups: dict[str, list[Json]] = {}
    identify = bool(cfg.get("identify_faces"))
    rnd = rng.random
    everyone = list(range(f.num_faces))
    for (frame, t), track in zip(frames, tracks, strict=True):
        for who in everyone if f.faces_together else (track,):
            _face_prediction(frame, t, who, boxes, scorers, facs, descs, threshold, rnd, groups, identify)
    return {
        "metadata": None,
        "grouped_predictions": [{"id": k, "predictions": v} for k, v in sorted(groups.items())],
    }


def _face_prediction(
    frame: int,
    t: float,
    who: int,
    boxes: list[list[float]],
    scorers: list[Scorer],
    facs: list[Scorer] | None,
    descs: list[Scorer] | None,
    threshold: float,
    rnd: Callable[[], float],
    groups: dict[str, list[Json]],
    identify: bool,
) -> None:
    width, height = (1920.0, 1080.0)
    if rnd() < 0.08:
        scorers[who].drift()
    box = boxes[who]
    box[0] = min(width - box[2], max(0.0, box[0] + (rnd() - 0.5) * 6))
    box[1] = min(height - box[3], max(0.0, box[1] + (rnd() - 0.5) * 4))
    pred: Json = {
        "frame": frame,
        "time": t,
        "prob": 1.0 - (1.0 - threshold) * rnd() * 0.98,
        "box": {"x": box[0], "y": box[1], "w": box[2], "h": box[3]},
        "emotions": scorers[who].scores(),
        "facs": facs[who].scores() if facs is not None else None,
        "descriptions": descs[who].scores() if descs is not None else None,
    }
    groups.setdefault(f"face_{who}" if identify else "unknown", []).append(pred)


def facemesh(f: MediaFile, cfg: Json) -> Json | None:
    if f.kind not in ("video", "image"):
        return None
    rng = seeded_rng(f, "facemesh", cfg)
    frames = _face_frames(f, 3)
    scorer = Scorer(rng, EMOTIONS_48)
    preds = []
    for _ in frames:
        if rng.random() < 0.08:
            scorer.drift()
        preds.append({"emotions": scorer.scores()})
    return {"metadata": None, "grouped_predictions": [{"id": "unknown", "predictions": preds}]}


# ---------------------------------------------------------------- speech models


def _transcript(f: MediaFile) -> Transcript:
    if f.text is not None:
        return transcript_from_text(f.text)
    return make_transcript(stable_hash(f.seed_key, "transcript"), f.duration_s, f.num_speakers)


def _segments(words: Sequence[Word], granularity: str) -> list[list[Word]]:
    """Group words the way Hume's granularity option does."""
    if granularity == "word":
        return [[w] for w in words]
    key: Callable[[Word], int] = {
        "sentence": lambda w: w.sentence,
        "conversational_turn": lambda w: w.turn,
    }.get(granularity, lambda w: w.utterance)
    out: list[list[Word]] = []
    for w in words:
        if out and key(out[-1][-1]) == key(w):
            out[-1].append(w)
        else:
            out.append([w])
    return out


def _metadata(f: MediaFile, transcription: Json | None) -> Json:
    rng = random.Random(stable_hash(f.seed_key, "metadata"))
    lang = (transcription or {}).get("language") or "en"
    return {"confidence": 0.85 + 0.14 * rng.random(), "detected_language": lang}


def _speaker_id(identify: bool, speaker: int) -> str:
    return f"spk_{speaker}" if identify else "unknown"


def _group(items: list[tuple[str, Json]]) -> list[Json]:
    groups: dict[str, list[Json]] = {}
    for key, pred in items:
        groups.setdefault(key, []).append(pred)
    return [{"id": k, "predictions": v} for k, v in sorted(groups.items())]


def prosody(f: MediaFile, cfg: Json, transcription: Json | None) -> Json | None:
    if not f.has_audio:
        return None
    rng = seeded_rng(f, "prosody", cfg)
    identify = bool(cfg.get("identify_speakers"))
    scorers = [Scorer(rng, EMOTIONS_48) for _ in range(f.num_speakers)]
    items: list[tuple[str, Json]] = []
    window = cfg.get("window")
    if window:
        # Sliding windows ignore granularity and carry no text (Hume: granularity ignored).
        length = float(window.get("length") or 4)
        step = float(window.get("step") or 1)
        t = 0.0
        while t < f.duration_s or not items:
            scorers[0].drift()
            items.append(
                (
                    "unknown",
                    {
                        "text": None,
                        "time": {"begin": t, "end": min(t + length, max(f.duration_s, t + 0.01))},
                        "confidence": None,
                        "speaker_confidence": None,
                        "emotions": scorers[0].scores(),
                    },
                )
            )
            t += step
    else:
        words = _transcript(f).words
        with_text = transcription is not None
        for seg in _segments(words, str(cfg.get("granularity") or "utterance")):
            who = seg[0].speaker
            if rng.random() < 0.3:
                scorers[who].drift()
            items.append(
                (
                    _speaker_id(identify, who),
                    {
                        "text": " ".join(w.text for w in seg) if with_text else None,
                        "time": {"begin": seg[0].begin, "end": seg[-1].end},
                        "confidence": sum(w.confidence for w in seg) / len(seg) if with_text else None,
                        "speaker_confidence": 0.7 + 0.3 * rng.random() if identify else None,
                        "emotions": scorers[who].scores(),
                    },
                )
            )
    return {"metadata": _metadata(f, transcription), "grouped_predictions": _group(items)}


def burst(f: MediaFile, cfg: Json) -> Json | None:
    if not f.has_audio:
        return None
    rng = seeded_rng(f, "burst", cfg)
    scorer = Scorer(rng, EMOTIONS_48)
    descs = Scorer(rng, BURST_DESCRIPTIONS, 3)
    preds: list[Json] = []
    t = 1.0 + rng.random() * 6
    while t < f.duration_s - 0.3:
        end = min(t + 0.3 + rng.random() * 1.2, f.duration_s)
        scorer.drift()
        descs.drift()
        preds.append({"time": {"begin": t, "end": end}, "emotions": scorer.scores(), "descriptions": descs.scores()})
        t = end + 4 + rng.random() * 20
    groups = [{"id": "unknown", "predictions": preds}] if preds else []
    return {"metadata": None, "grouped_predictions": groups}


def language(f: MediaFile, cfg: Json, transcription: Json | None) -> Json | None:
    from_text = f.text is not None
    if not from_text and (not f.has_audio or transcription is None):
        return None
    rng = seeded_rng(f, "language", cfg)
    identify = bool(cfg.get("identify_speakers")) and not from_text
    scorer = Scorer(rng, EMOTIONS_53)
    sentiment = cfg.get("sentiment") is not None
    toxicity = cfg.get("toxicity") is not None
    items: list[tuple[str, Json]] = []
    for seg in _segments(_transcript(f).words, str(cfg.get("granularity") or "word")):
        if rng.random() < 0.2:
            scorer.drift()
        who = seg[0].speaker
        pred: Json = {
            "text": " ".join(w.text for w in seg),
            "position": {"begin": seg[0].pos_begin, "end": seg[-1].pos_end},
            "time": None if from_text else {"begin": seg[0].begin, "end": seg[-1].end},
            "confidence": None if from_text else sum(w.confidence for w in seg) / len(seg),
            "speaker_confidence": 0.7 + 0.3 * rng.random() if identify else None,
            "emotions": scorer.scores(),
            "sentiment": normalised(rng, SENTIMENT, 4 + rng.randrange(-2, 3)) if sentiment else None,
            "toxicity": (
                [{"name": n, "score": 0.0005 + 0.03 * rng.random() ** 3} for n in TOXICITY] if toxicity else None
            ),
        }
        if from_text:
            # A text position must point into the caller's own string.
            pred["text"] = f.text[seg[0].pos_begin : seg[-1].pos_end] if f.text else pred["text"]
        items.append((_speaker_id(identify, who), pred))
    return {
        "metadata": None if from_text else _metadata(f, transcription),
        "grouped_predictions": _group(items),
    }


def ner(f: MediaFile, cfg: Json, transcription: Json | None) -> Json | None:
    from_text = f.text is not None
    if not from_text and (not f.has_audio or transcription is None):
        return None
    rng = seeded_rng(f, "ner", cfg)
    identify = bool(cfg.get("identify_speakers")) and not from_text
    scorer = Scorer(rng, EMOTIONS_48)
    words = _transcript(f).words
    items: list[tuple[str, Json]] = []
    for i, w in enumerate(words):
        bare = w.text.rstrip(".,!?;:")
        entity = None
        if bare in _ENTITY_URI:
            entity, end_word = bare, w
        elif i + 1 < len(words) and f"{bare} {words[i + 1].text.rstrip('.,!?;:')}" in _ENTITY_URI:
            entity, end_word = f"{bare} {words[i + 1].text.rstrip('.,!?;:')}", words[i + 1]
        if entity is None:
            continue
        scorer.drift()
        items.append(
            (
                _speaker_id(identify, w.speaker),
                {
                    "entity": entity,
                    "position": {"begin": w.pos_begin, "end": w.pos_begin + len(entity)},
                    "entity_confidence": 0.8 + 0.2 * rng.random(),
                    "support": 5 + 20 * rng.random(),
                    "uri": _ENTITY_URI[entity],
                    "link_word": entity.split(" ")[0],
                    "time": None if from_text else {"begin": w.begin, "end": end_word.end},
                    "confidence": None if from_text else w.confidence,
                    "speaker_confidence": 0.7 + 0.3 * rng.random() if identify else None,
                    "emotions": scorer.scores(),
                },
            )
        )
    return {
        "metadata": None if from_text else _metadata(f, transcription),
        "grouped_predictions": _group(items),
    }


# ---------------------------------------------------------------- per file


def predict_file(f: MediaFile, models: Json, transcription: Json | None) -> Json:
    """One ``InferencePrediction`` (plus Hume's undocumented ``file_type``) for one media file."""
    out: Json = {}
    if f.kind == "text":
        runners: dict[str, Callable[[Json], Json | None]] = {
            "language": lambda c: language(f, c, transcription),
            "ner": lambda c: ner(f, c, transcription),
        }
    else:
        runners = {
            "face": lambda c: face(f, c),
            "burst": lambda c: burst(f, c),
            "prosody": lambda c: prosody(f, c, transcription),
            "language": lambda c: language(f, c, transcription),
            "ner": lambda c: ner(f, c, transcription),
            "facemesh": lambda c: facemesh(f, c),
        }
    for name, run in runners.items():
        cfg = models.get(name)
        if cfg is None:
            continue
        result = run(cfg)
        if result is not None:
            out[name] = result
    return {"file": f.name, "file_type": f.file_type, "models": out}
