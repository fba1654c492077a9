"""Encoders for Postgres' binary COPY format (the "PGCOPY" stream), for the hot ingest path.

psycopg's `write_row` dumps a `real[]` element by element in Python; a prediction carries 48 of them,
so ingest builds the bytes here instead: a score array is one `struct.pack` and four slice copies.
Layouts: https://www.postgresql.org/docs/current/sql-copy.html (binary format) and the array wire
format of array_send (ndim, has-null flag, element oid, then per dimension size and lower bound).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
FLOAT4_OID = 700

_int2 = struct.Struct(">h").pack
_int4_field = struct.Struct(">ii").pack
_int8_field = struct.Struct(">iq").pack
_float8_field = struct.Struct(">id").pack
_float4_field = struct.Struct(">if").pack
_length = struct.Struct(">i").pack
_array_head = struct.Struct(">iiiiii").pack


def row_start(fields: int) -> bytes:
    return _int2(fields)


def text(value: str | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode()
    return _length(len(data)) + data


def int4(value: int | None) -> bytes:
    return NULL if value is None else _int4_field(4, value)


def int8(value: int | None) -> bytes:
    return NULL if value is None else _int8_field(8, value)


def float8(value: float | None) -> bytes:
    return NULL if value is None else _float8_field(8, value)


def float4(value: float | None) -> bytes:
    """A `real` field (struct.error past float4's range, as for the arrays)."""
    return NULL if value is None else _float4_field(4, value)


def uuid_(value: uuid.UUID) -> bytes:
    return b"\x00\x00\x00\x10" + value.bytes


def jsonb(value: bytes | None) -> bytes:
    """A JSON document already serialized (jsonb's binary form is a version byte, then the text)."""
    if value is None:
        return NULL
    return _length(len(value) + 1) + b"\x01" + value


_float4s: dict[int, struct.Struct] = {}
_templates: dict[int, bytes] = {}


def float4_values(values: Sequence[float]) -> bytes:
    """Big-endian float4s, packed back to back (also what stats are computed from: the stored values)."""
    n = len(values)
    packer = _float4s.get(n)
    if packer is None:
        packer = _float4s[n] = struct.Struct(f">{n}f")
    return packer.pack(*values)


def float4_array(packed: bytes) -> bytes:
    """A `real[]` field, no NULL elements, from `float4_values` output."""
    n = len(packed) // 4
    template = _templates.get(n)
    if template is None:
        # Every element is preceded by its length (4); the values are spliced in between.
        template = _templates[n] = (
            _array_head(20 + 8 * n, 1, 0, FLOAT4_OID, n, 1) + b"\x00\x00\x00\x04\x00\x00\x00\x00" * n
        )
    out = bytearray(template)
    for k in range(4):
        out[28 + k :: 8] = packed[k::4]
    return bytes(out)


_BOX = struct.Struct(">iiiiii" + "if" * 4).pack


def float4_array_of(values: Sequence[float]) -> bytes:
    """A `real[]` field of the values, no NULLs; a box (four of them) in one `struct.pack`."""
    if len(values) == 4:
        a, b, c, d = values
        return _BOX(52, 1, 0, FLOAT4_OID, 4, 1, 4, a, 4, b, 4, c, 4, d)
    return float4_array(float4_values(values))


def float4_array_sparse(width: int, present: Sequence[tuple[int, float]]) -> bytes:
    """A `real[]` of `width` elements, NULL except at the given (position, value)s, sorted by position.

    Costs per present value, not per element: a v1 row scores ~15 of ~460 names."""
    parts = [_array_head(0, 1, 1, FLOAT4_OID, width, 1)]
    pack = _VALUE.pack
    at = 0
    for position, value in present:
        if position > at:
            parts.append(NULL * (position - at))
        parts.append(pack(4, value))
        at = position + 1
    if width > at:
        parts.append(NULL * (width - at))
    body = b"".join(parts)
    return _length(len(body) - 4) + body[4:]


_VALUE = struct.Struct(">if")
_ELEMENT = b"\x00\x00\x00\x04"


_GAPS = [NULL * gap + _ELEMENT for gap in range(512)]
"""An element's length word preceded by the NULLs of the positions skipped before it."""


def float4_array_listed(width: int, positions: Sequence[int], packed: bytes) -> bytes:
    """`float4_array_sparse` from increasing positions and their `float4_values` output: the values are
    sliced, not packed one by one."""
    parts = [_array_head(0, 1, 1, FLOAT4_OID, width, 1)]
    at = 0
    k = 0
    for position in positions:
        gap = position - at
        parts.append(_GAPS[gap] if gap < 512 else NULL * gap + _ELEMENT)
        parts.append(packed[k : k + 4])
        k += 4
        at = position + 1
    if width > at:
        parts.append(NULL * (width - at))
    body = b"".join(parts)
    return _length(len(body) - 4) + body[4:]


def float4_array_nullable(values: Sequence[float | None]) -> bytes:
    """A `real[]` field whose elements may be NULL (a name this prediction did not score)."""
    n = len(values)
    parts = [_array_head(0, 1, 1, FLOAT4_OID, n, 1)]
    pack = struct.Struct(">if").pack
    for v in values:
        parts.append(NULL if v is None else pack(4, v))
    body = b"".join(parts)
    return _length(len(body) - 4) + body[4:]
