"""The `config` part of v1 file uploads: Hume's fields, ranges and defaults, and its refusals.

Unknown fields are refused (HUME-V1-FACTS §3, ERR's example: 400 `config_invalid`, "the config part is
not valid: unknown field `timer_ms`, expected `measurement_timer_ms` at line 1 column 11"). That wording
is serde_json's, so the emulator words its refusals the same way: "expected `a`", "expected `a` or `b`",
"expected one of `a`, `b`, `c`", and the line/column where the offending key ends.

Explicit JSON `null` for an optional field: Hume's docs are silent. A serde `Option<T>` field would take
null as "not set", a defaulted plain field would refuse it. The emulator refuses it (`config_invalid`
naming the field): a client that omits unset fields works against either behaviour, a client that sends
nulls is caught here rather than in production. Note that the official SDK sends null for a field set to
None explicitly (`VideoFileConfigFace(threshold=None)` -> `{"face": {"threshold": null}}`) and omits it
only when it was never set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .expression_errors import ExpressionError

# HUME-V1-FACTS §3 (SDK audio_file_config.py; LIM/LE): 3000-10000 ms of speech, default 3000.
TIMER_MIN_MS, TIMER_MAX_MS, DEFAULT_TIMER_MS = 3_000, 10_000, 3_000
# HUME-V1-FACTS §3 (SDK video_file_config_face.py; LIM): threshold 0-1, default 0.9 (a face is kept if its
# confidence >= threshold); min_size an integer >= 1 px, default 60 (skipped if the box's shorter side is
# under it); return_face_state defaults to false (inferred: "present when set").
THRESHOLD_RANGE, DEFAULT_THRESHOLD = (0.0, 1.0), 0.9
MIN_SIZE_MIN, DEFAULT_MIN_SIZE = 1, 60

AUDIO_FIELDS = ("measurement_timer_ms",)
VIDEO_FIELDS = ("face", "face_state")
FACE_FIELDS = ("threshold", "min_size", "return_face_state")
PREFIX = "the config part is not valid: "
_WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class AudioSettings:
    measurement_timer_ms: int = DEFAULT_TIMER_MS

    def run_config(self, sample_rate: int) -> dict[str, Any]:
        """The run's `config` (HUME-V1-FACTS §6: "including defaults for any settings the request did not set")."""
        return {
            "schema": "v4",
            "audio": {"type": "audio/pcm", "encoding": "s16le", "sample_rate": sample_rate, "channels": 1},
            "measurement_timer_ms": self.measurement_timer_ms,
        }


@dataclass(frozen=True)
class VideoSettings:
    threshold: float = DEFAULT_THRESHOLD
    min_size: int = DEFAULT_MIN_SIZE
    return_face_state: bool = False
    face_state: str | None = None

    def run_config(self) -> dict[str, Any]:
        # SDK face_config.py: the threshold is "reported rounded to four decimal places".
        return {
            "schema": "v4",
            "image": {"type": "image/jpeg"},
            "face": {"threshold": round(self.threshold, 4), "min_size": self.min_size},
        }


def _invalid(detail: str) -> ExpressionError:
    return ExpressionError("config_invalid", PREFIX + detail)


def _one_of(names: tuple[str, ...]) -> str:
    quoted = [f"`{n}`" for n in names]
    if len(quoted) == 1:
        return f"expected {quoted[0]}"
    if len(quoted) == 2:
        return f"expected {quoted[0]} or {quoted[1]}"
    return "expected one of " + ", ".join(quoted)


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _key_end(text: str, path: tuple[str, ...]) -> int:
    """The index just past the closing quote of the key at `path` (first occurrence) in valid JSON text."""
    decoder = json.JSONDecoder()
    pos = 0
    for depth, wanted in enumerate(path):
        pos = _skip_ws(text, pos) + 1  # the object's "{"
        while True:
            pos = _skip_ws(text, pos)
            if text[pos] == "}":
                return pos
            name, pos = decoder.raw_decode(text, pos)
            if name == wanted and depth == len(path) - 1:
                return pos
            pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ":"
            if name == wanted:
                break
            _, pos = decoder.raw_decode(text, pos)
            pos = _skip_ws(text, pos) + 1  # past "," (or "}", which the loop never reaches for a listed key)
    return pos


def _at(text: str, path: tuple[str, ...]) -> str:
    end = _key_end(text, path)
    line = text.count("\n", 0, end) + 1
    return f" at line {line} column {end - (text.rfind(chr(10), 0, end) + 1)}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _invalid(f"duplicate field `{key}`")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON number")


def _load(raw: bytes) -> tuple[str, dict[str, Any]]:
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise _invalid("the part is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise _invalid(f"{exc.msg.lower()} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise _invalid(f"invalid type: {_kind(value)}, expected a JSON object")
    return text, value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


def _check_fields(text: str, obj: dict[str, Any], allowed: tuple[str, ...], path: tuple[str, ...]) -> None:
    for key, value in obj.items():
        if key not in allowed:
            raise _invalid(f"unknown field `{key}`, {_one_of(allowed)}{_at(text, (*path, key))}")
        if value is None:
            dotted = ".".join((*path, key))
            raise _invalid(f"`{dotted}` is null; omit the field to use its default")


def _integer(obj: dict[str, Any], key: str, dotted: str, low: int, high: int | None, default: int) -> int:
    if key not in obj:
        return default
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"`{dotted}`: invalid type: {_kind(value)}, expected an integer")
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise _invalid(f"`{dotted}` must be {bounds}, got {value}")
    return value


def audio_settings(raw: bytes | None) -> AudioSettings:
    """The settings of an audio upload's `config` part (None: no part, every default)."""
    if raw is None:
        return AudioSettings()
    text, config = _load(raw)
    _check_fields(text, config, AUDIO_FIELDS, ())
    timer = _integer(config, "measurement_timer_ms", "measurement_timer_ms", TIMER_MIN_MS, TIMER_MAX_MS,
                     DEFAULT_TIMER_MS)  # fmt: skip
    return AudioSettings(timer)


def video_settings(raw: bytes | None) -> VideoSettings:
    """The settings of a video upload's `config` part (None: no part, every default)."""
    if raw is None:
        return VideoSettings()
    text, config = _load(raw)
    _check_fields(text, config, VIDEO_FIELDS, ())
    face = config.get("face", {})
    if not isinstance(face, dict):
        raise _invalid(f"`face`: invalid type: {_kind(face)}, expected a JSON object")
    _check_fields(text, face, FACE_FIELDS, ("face",))
    threshold = face.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise _invalid(f"`face.threshold`: invalid type: {_kind(threshold)}, expected a number")
    low, high = THRESHOLD_RANGE
    if not low <= threshold <= high:
        raise _invalid(f"`face.threshold` must be from {low:g} to {high:g}, got {threshold}")
    min_size = _integer(face, "min_size", "face.min_size", MIN_SIZE_MIN, None, DEFAULT_MIN_SIZE)
    return_state = face.get("return_face_state", False)
    if not isinstance(return_state, bool):
        raise _invalid(f"`face.return_face_state`: invalid type: {_kind(return_state)}, expected a boolean")
    state = config.get("face_state")
    if state is not None and not isinstance(state, str):
        raise _invalid(f"`face_state`: invalid type: {_kind(state)}, expected a string")
    return VideoSettings(float(threshold), min_size, return_state, state)
