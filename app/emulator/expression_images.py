"""v1 images: check JPEGs by walking their markers, place faces, score them deterministically.

Faces: a JPEG comment (COM segment) ``faces=N`` or ``slots=a,b`` places faces in fixed slots
(a 4x2 grid, slot 0 largest), so tests and demos choose them, with a detection confidence of 0.9-0.999
(clear faces, which Hume's default threshold of 0.9 measures) or the comment's ``confidence=C``;
otherwise 0-3 faces in slots picked by a hash of the image bytes, confidence 0.3-0.999. Scores are
seeded by that hash and the slot.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass
from typing import Any

from .expression_errors import ExpressionError
from .expression_labels import VIDEO_DESCRIPTIONS, VIDEO_EXPRESSIONS

# HUME-V1-FACTS §4 (LIM; the SDK's video_helpers/sender.py uses 2,000,000 bytes): 2 MB per image, and
# 8,294,400 pixels (the area of 3840x2160) per image.
MAX_IMAGE_BYTES = 2_000_000
MAX_PIXELS = 8_294_400
SLOTS = 8
# Baseline, extended, progressive and lossless frames (C4, C8 and CC are other segments).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class Jpeg:
    width: int
    height: int
    comment: str
    digest: bytes


def _walk(data: bytes) -> tuple[tuple[int, int] | None, str, str | None]:
    """(width and height, comment, what is wrong or None) from the JPEG's markers up to its scan."""
    pos, size, comment = 2, None, ""
    while True:
        if pos + 2 > len(data) or data[pos] != 0xFF:
            return size, comment, "The JPEG is truncated or malformed."
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 2 > len(data):
            return size, comment, "The JPEG is truncated or malformed."
        marker = data[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xD9 or pos + 4 > len(data):
            return size, comment, "The JPEG ends before its image data."
        length = struct.unpack_from(">H", data, pos + 2)[0]
        segment = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(segment) != length - 2:
            return size, comment, "The JPEG is truncated or malformed."
        if marker == 0xFE:
            comment += " " + segment.decode("latin-1")
        elif marker in _SOF:
            if len(segment) < 5:
                return size, comment, "The JPEG frame header is truncated."
            height, width = struct.unpack_from(">HH", segment, 1)
            size = (width, height)
        elif marker == 0xDA:
            if size is None:
                return size, comment, "The JPEG has no frame header before its scan."
            if data.find(b"\xff\xd9", pos + 2 + length) < 0:
                return size, comment, "The JPEG is truncated (no end-of-image marker)."
            return size, comment, None
        pos += 2 + length


def check_jpeg(data: bytes) -> None:
    """The checks every image of a request passes before any is measured (HUME-V1-FACTS §4: "All images are
    checked first; one bad image fails the request"): JPEG, at most 2,000,000 bytes and 8,294,400 pixels.
    Whether the image decodes is found out while measuring ("possibly after earlier images were measured")."""
    if not data.startswith(b"\xff\xd8"):
        raise ExpressionError("unsupported_media_type", "Images must be JPEG.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ExpressionError("image_too_large", f"An image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}.")
    size = _walk(data)[0]
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        width, height = size
        raise ExpressionError("image_too_large", f"An image is {width}x{height}; the limit is {MAX_PIXELS} pixels.")


def parse_jpeg(data: bytes) -> Jpeg:
    """Size, comment and hash of a checked JPEG, or `image_decode_failed`."""
    check_jpeg(data)
    size, comment, problem = _walk(data)
    if problem is not None or size is None:
        raise ExpressionError("image_decode_failed", problem or "The JPEG has no frame header.")
    width, height = size
    if width == 0 or height == 0:
        raise ExpressionError("image_decode_failed", "The JPEG has a zero width or height.")
    return Jpeg(width, height, comment, hashlib.blake2b(data, digest_size=16).digest())


def _marker_slots(comment: str) -> list[int] | None:
    for item in comment.replace(";", " ").split():
        key, _, value = item.partition("=")
        try:
            if key == "faces":
                return list(range(min(int(value), SLOTS)))
            if key == "slots":
                return sorted({int(v) for v in value.split(",") if 0 <= int(v) < SLOTS})
        except ValueError:
            return None
    return None


def _marker_confidence(comment: str) -> float | None:
    for item in comment.replace(";", " ").split():
        key, _, value = item.partition("=")
        if key == "confidence":
            try:
                return min(1.0, max(0.0, round(float(value), 4)))
            except ValueError:
                return None
    return None


def slot_bbox(image: Jpeg, slot: int) -> list[float]:
    """Slot i: column i % 4, row i // 4; the side shrinks with i so "largest first" is slot order."""
    cell_w, cell_h = image.width / 4, image.height / 2
    side = min(cell_w, cell_h) * (0.8 - 0.05 * slot)
    cx, cy = cell_w * (slot % 4 + 0.5), cell_h * (slot // 4 + 0.5)
    return [round(cx - side / 2, 1), round(cy - side / 2, 1), round(cx + side / 2, 1), round(cy + side / 2, 1)]


def detect(image: Jpeg) -> list[tuple[int, float]]:
    """(slot, confidence) of every face the detector sees."""
    slots = _marker_slots(image.comment)
    rng = random.Random(image.digest)
    if slots is None:
        slots = sorted(rng.sample(range(SLOTS), image.digest[0] % 4))
        return [(s, round(rng.uniform(0.3, 0.999), 4)) for s in slots]
    confidence = _marker_confidence(image.comment)
    return [(s, round(rng.uniform(0.9, 0.999), 4) if confidence is None else confidence) for s in slots]


def _scores(rng: random.Random, names: tuple[str, ...], count: int) -> list[dict[str, Any]]:
    """HUME-V1-FACTS §6: face scores only above 0.1, 4 dp, sorted by probability then name."""
    scored = [(round(rng.uniform(0.1001, 0.95), 4), n) for n in rng.sample(names, count)]
    scored.sort(key=lambda p: (-p[0], p[1]))
    return [{"name": n, "probability": p} for p, n in scored]


def score_face(image: Jpeg, slot: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(image.digest + bytes([slot]))
    # HUME-V1-FACTS §6: only scores above 0.1 are listed, so a measured face's lists may be empty (they are
    # [] then; null is for a face listed but not measured): about one in nine is here.
    return _scores(rng, VIDEO_EXPRESSIONS, rng.randint(0, 8)), _scores(rng, VIDEO_DESCRIPTIONS, rng.randint(0, 4))
