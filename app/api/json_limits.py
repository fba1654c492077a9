"""Bounds on client JSON: nesting depth for every body, and what job metadata (or a metadata filter) may hold.

Metadata is stored in Postgres jsonb and read back by every list, so it must be small and must survive the
round trip: jsonb keeps a number as an exact decimal (1e20 comes back as a 21-digit integer that orjson
cannot write), and text cannot hold NUL. Numbers are therefore limited to |x| <= 2**53, the integers a
JSON double holds exactly (what JavaScript clients can read back unchanged); floats must also be finite.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from app.errors import InvalidInput

# Every JSON body: deeper than this is no request we serve (orjson's own hard limit is 1024).
MAX_JSON_DEPTH = 32
MAX_METADATA_BYTES = 16 << 10
MAX_METADATA_DEPTH = 8
MAX_METADATA_KEYS = 100
MAX_KEY_LENGTH = 128
MAX_SAFE_NUMBER = 2**53
ENCODING_ERROR = {"error": "stored value cannot be encoded as JSON"}
OBJECT_EXPECTED = 'must be a JSON object, e.g. {"team": "research"}'


def parse_bounded(
    body: bytes | str, field: str = "body", *, max_depth: int = MAX_JSON_DEPTH, malformed: str | None = None
) -> Any:
    """Parse JSON, refusing (422) what is malformed (with `malformed` as the message, if given) or nested
    deeper than `max_depth`.

    orjson bounds its recursion itself (1024 levels, reported as a decode error), so the walk below only
    ever sees a bounded tree and is iterative anyway.
    """
    try:
        value = orjson.loads(body)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput(field, malformed or f"not valid JSON ({exc})") from None
    if depth(value) > max_depth:
        raise InvalidInput(field, f"nested deeper than {max_depth} levels")
    return value


def parse_storable(body: bytes, field: str = "body") -> Any:
    """parse_bounded and check_storable in one walk (check_storable bounds the depth too)."""
    try:
        value = orjson.loads(body)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput(field, f"not valid JSON ({exc})") from None
    check_storable(value, field)
    return value


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, `{}` is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level + 1)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level + 1)
            stack.extend((v, level + 1) for v in item)
    return deepest


def check_storable(value: Any, field: str, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse (422, naming the path) what jsonb cannot store or would give back changed: NUL in keys or
    strings, non-finite or out-of-range numbers, nesting deeper than `max_depth`."""
    # Walked without paths first: naming every key's path as it went was most of a webhook body's check
    # (17 us of 20); the paths are made only to name what is wrong.
    if not _storable(value, max_depth):
        _name_unstorable(value, field, max_depth)


def _storable(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            if level >= max_depth:
                return False
            for key, sub in item.items():
                if not isinstance(key, str) or "\x00" in key or len(key) > MAX_KEY_LENGTH:
                    return False
                stack.append((sub, level + 1))
        elif isinstance(item, list):
            if level >= max_depth:
                return False
            stack.extend((sub, level + 1) for sub in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return False
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            if (isinstance(item, float) and not math.isfinite(item)) or abs(item) > MAX_SAFE_NUMBER:
                return False
        else:
            return False
    return True


def _name_unstorable(value: Any, field: str, max_depth: int) -> None:
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, level = stack.pop()
        if isinstance(item, dict | list) and level >= max_depth:
            raise InvalidInput(field, f"nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise InvalidInput(path, "keys must not contain NUL characters")
                if len(key) > MAX_KEY_LENGTH:
                    raise InvalidInput(f"{path}.{key[:32]}", f"key longer than {MAX_KEY_LENGTH} characters")
                stack.append((sub, f"{path}.{key}", level + 1))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{i}]", level + 1) for i, sub in enumerate(item))
        elif isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(path, "must not contain NUL characters")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            if isinstance(item, float) and not math.isfinite(item):
                raise InvalidInput(path, "must be a finite number")
            if abs(item) > MAX_SAFE_NUMBER:
                raise InvalidInput(path, f"numbers must lie within ±2**53 ({MAX_SAFE_NUMBER})")
        else:
            raise InvalidInput(path, "must be a JSON value")


def check_metadata(value: Any, field: str = "metadata") -> dict[str, Any]:
    """Job metadata or a metadata filter: an object of at most 16 KiB serialized, depth 8, 100 keys per
    object, keys of at most 128 characters, storable as jsonb without change."""
    if not isinstance(value, dict):
        raise InvalidInput(field, OBJECT_EXPECTED)
    check_storable(value, field, max_depth=MAX_METADATA_DEPTH)
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) > MAX_METADATA_KEYS:
                raise InvalidInput(field, f"objects may hold at most {MAX_METADATA_KEYS} keys")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if len(orjson.dumps(value)) > MAX_METADATA_BYTES:
        raise InvalidInput(field, f"larger than {MAX_METADATA_BYTES} bytes as JSON")
    return value


def parse_metadata_filter(raw: str, field: str = "metadata") -> dict[str, Any]:
    """A metadata containment filter from a query string: the same bounds as stored metadata."""
    value = parse_bounded(raw, field, max_depth=MAX_METADATA_DEPTH + 1, malformed=OBJECT_EXPECTED)
    return check_metadata(value, field)


def encodable(value: Any) -> Any:
    """`value` if it can be written as JSON, else an error marker: one stored value written before these
    limits existed must not fail a whole list."""
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError, RecursionError):
        return ENCODING_ERROR
    return value
