"""A job's model options, per backend: batch's sets (as Hume's batch API takes them) and v1's (HUME-V1-FACTS §3),
the ranges each enforces at submit, and why a batch option is refused on v1."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app.api.typed_input import invalid
from app.errors import InvalidInput

# What Hume's v1 API measures: voice from the audio, faces from the frames. The batch-only models
# (language, ner, burst, facemesh) and text inputs have no v1 endpoint.
V1_MODELS = ("prosody", "face")

# Hume v1's config ranges and defaults (HUME-V1-FACTS §3; Hume docs: dev.hume.ai/expression-measurement/docs/limits).
# An option left out is not sent, so Hume's own default applies.
FACE_THRESHOLD_DEFAULT = 0.9
FACE_MIN_SIZE_DEFAULT = 60
TIMER_RANGE_MS = (3000, 10_000)
TIMER_DEFAULT_MS = 3000
FACE_STATE_VALID_H = 24
# Our own ceiling on the frames per second sent to Hume for `face`: the batch face model's default rate
# (HUME.md 1.3, fps_pred 3) and Hume v1 realtime's 3 frames/s cap (HUME-V1-FACTS §4). Hume bills 1/3 s per
# image (§6), so this also bounds a video's cost at its own duration.
MAX_FACE_FPS = 3.0


class V1FaceOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`face` options of a job on the v1 backend (Hume's v1 API). Each one left out: the default shown."""

    threshold: (
        Annotated[
            float,
            Meta(ge=0, le=1, description=f"the detection confidence a face needs to be kept, 0 to 1; omitted: Hume's "
                 f"default {FACE_THRESHOLD_DEFAULT}. v1's own scale: batch's prob_threshold values do not carry over"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    min_size: (
        Annotated[
            int,
            Meta(ge=1, description="the smallest face kept, in pixels of its box's shorter side; omitted: Hume's "
                 f"default {FACE_MIN_SIZE_DEFAULT}"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    fps: (
        Annotated[
            float,
            Meta(gt=0, le=MAX_FACE_FPS, description="frames per second of video sent to Hume (each frame is billed as "
                 "1/3 s); omitted: V1_FACE_FPS (default 3)"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    face_state: (
        Annotated[
            str,
            Meta(min_length=1, description="a face_state from an earlier v1 job's details.face_states: its faces keep "
                 f"their face ids here. Hume keeps one valid {FACE_STATE_VALID_H} h and silently ignores an expired "
                 "or foreign one (ids then restart at 0)"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip


class V1ProsodyOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`prosody` options of a job on the v1 backend (Hume's v1 API)."""

    measurement_timer_ms: (
        Annotated[
            int,
            Meta(ge=TIMER_RANGE_MS[0], le=TIMER_RANGE_MS[1],
                 description="one measurement per this many ms of speech (plus one as each utterance ends); "
                 f"omitted: Hume's default {TIMER_DEFAULT_MS}"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip


class BatchWindow(msgspec.Struct, omit_defaults=True):
    length: float | UnsetType | None = UNSET
    step: float | UnsetType | None = UNSET


class BatchFaceOptions(msgspec.Struct, omit_defaults=True):
    """`face` options of a job on the batch backend, as Hume's batch API took them (HUME.md 1.3). Documents only:
    the batch SDK's own schema validates them, and passes fields it does not know on to Hume."""

    fps_pred: float | UnsetType | None = UNSET
    prob_threshold: float | UnsetType | None = UNSET
    identify_faces: bool | UnsetType | None = UNSET
    min_face_size: int | UnsetType | None = UNSET
    facs: dict[str, Any] | UnsetType | None = UNSET
    descriptions: dict[str, Any] | UnsetType | None = UNSET
    save_faces: bool | UnsetType | None = UNSET


class BatchProsodyOptions(msgspec.Struct, omit_defaults=True):
    """`prosody` options of a job on the batch backend, as Hume's batch API took them (HUME.md 1.3)."""

    granularity: Literal["word", "sentence", "utterance", "conversational_turn"] | UnsetType | None = UNSET
    window: BatchWindow | UnsetType | None = UNSET
    identify_speakers: bool | UnsetType | None = UNSET


# Per model with two option sets: (batch's, v1's). The OpenAPI document offers both.
OPTION_SETS: dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]] = {
    "face": (BatchFaceOptions, V1FaceOptions),
    "prosody": (BatchProsodyOptions, V1ProsodyOptions),
}

# Why each v1 option is refused when it is not the right type or range: the field's whole rule.
_V1_RULES = {
    "threshold": f"must be a number from 0 to 1 (omitted: Hume's default {FACE_THRESHOLD_DEFAULT})",
    "min_size": f"must be an integer of at least 1 (pixels; omitted: Hume's default {FACE_MIN_SIZE_DEFAULT})",
    "fps": f"must be a number above 0 and at most {MAX_FACE_FPS:g} (frames per second sent to Hume; omitted: "
    "V1_FACE_FPS)",
    "face_state": "must be a non-empty string: a face_state from an earlier v1 job's details.face_states",
    "measurement_timer_ms": f"must be an integer from {TIMER_RANGE_MS[0]} to {TIMER_RANGE_MS[1]} (ms of speech per "
    f"measurement; omitted: Hume's default {TIMER_DEFAULT_MS})",
}
# Batch options that v1 does not take, each with what to use instead: never translated silently.
_BATCH_ONLY = {
    "face": {
        "prob_threshold": "is a batch option; the v1 backend takes threshold (0 to 1, Hume's default "
        f"{FACE_THRESHOLD_DEFAULT}), on v1's own scale: batch's value (default 0.99) does not carry over",
        "min_face_size": "is a batch option; the v1 backend takes min_size (an integer of at least 1 px, Hume's "
        f"default {FACE_MIN_SIZE_DEFAULT})",
        "fps_pred": f"is a batch option; the v1 backend takes fps (above 0, at most {MAX_FACE_FPS:g})",
        "identify_faces": "is a batch option; the v1 backend always tracks identities (face_id); to continue an "
        "earlier job's, pass its face_state",
        "save_faces": "is a batch option; the v1 backend returns no face crops",
        "facs": "is a batch option; the v1 backend has no FACS output (its measured faces carry descriptions)",
        "descriptions": "is a batch option; the v1 backend always returns descriptions of measured faces",
    },
    "prosody": {
        "granularity": "is a batch option; the v1 backend measures each utterance and every measurement_timer_ms "
        f"of speech ({TIMER_RANGE_MS[0]} to {TIMER_RANGE_MS[1]})",
        "window": "is a batch option; the v1 backend takes measurement_timer_ms (ms of speech per measurement, "
        f"{TIMER_RANGE_MS[0]} to {TIMER_RANGE_MS[1]})",
        "identify_speakers": "is a batch option; the v1 backend does not identify speakers",
    },
}


# The batch options' documented ranges (HUME.md 1.3), which the batch SDK's schema does not check: a value
# outside them failed every try at Hume (fps_pred -1 kept a job in progress for good), so it is a 422 here.
_BATCH_RANGES: dict[tuple[str, ...], tuple[float, float | None, str]] = {
    ("face", "fps_pred"): (0, None, "must be 0 (every frame) or more frames per second"),
    ("face", "prob_threshold"): (0, 1, "must be from 0 to 1"),
    ("face", "min_face_size"): (0, None, "must be 0 or more pixels"),
    ("prosody", "window", "length"): (0.5, None, "must be at least 0.5 seconds"),
    ("prosody", "window", "step"): (0.5, None, "must be at least 0.5 seconds"),
}


def check_batch_ranges(models: dict[str, Any]) -> None:
    for path, (low, high, rule) in _BATCH_RANGES.items():
        value: Any = models
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < low or (high is not None and value > high):
                raise InvalidInput("models." + ".".join(path), f"{rule}, got {value}")


def v1_options(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """A v1 model's options as stored and sent: only those given, each in its range."""
    if model not in V1_MODELS:
        raise InvalidInput(
            f"models.{model}", f'the v1 backend measures only {" and ".join(V1_MODELS)}; {model} needs backend "batch"'
        )
    kind = OPTION_SETS[model][1]
    for key in options:
        if key in _BATCH_ONLY[model]:
            raise InvalidInput(f"models.{model}.{key}", _BATCH_ONLY[model][key])
        if key not in kind.__struct_fields__:
            raise InvalidInput(
                f"models.{model}.{key}",
                f"unknown option; the v1 backend's {model} options are {', '.join(kind.__struct_fields__)}",
            )
    try:
        parsed = msgspec.convert(options, kind)
    except msgspec.ValidationError as exc:
        refused = invalid(exc)
        raise InvalidInput(f"models.{model}.{refused.field}", _V1_RULES.get(refused.field, str(refused))) from None
    checked: dict[str, Any] = msgspec.to_builtins(parsed)
    return checked
