"""v1 face ids: a tracker across the images of a request, and the signed ``face_state`` that carries it.

A measured face keeps the id of a remembered face whose box overlaps it (IoU >= ``MATCH_IOU``),
else takes the next id; up to ``REMEMBERED`` faces are remembered, most recent first. The state is
``base64url(json).hmac``: altered, expired (24 h) or foreign states are ignored, as Hume does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from .expression_images import Jpeg, detect, score_face, slot_bbox

MATCH_IOU = 0.5
REMEMBERED = 32  # HUME-V1-FACTS §4: the server remembers 32 face ids
MEASURED_PER_IMAGE = 2  # HUME-V1-FACTS §4: 2 faces measured by default (the largest), 32 listed
LISTED_PER_IMAGE = 32
STATE_TTL_S = 24 * 3600  # HUME-V1-FACTS §3: face_state is valid 24 h
# The defaults of threshold (0.9) and min_size (60 px) are in expression_config.py.


def _iou(a: list[float], b: list[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@dataclass
class Tracker:
    next_id: int = 0
    faces: list[tuple[int, list[float]]] = field(default_factory=list)  # (id, last box), most recent first

    def assign(self, boxes: list[list[float]]) -> list[int]:
        ids: list[int] = []
        for box in boxes:
            best = max((f for f in self.faces if f[0] not in ids), key=lambda f: _iou(f[1], box), default=None)
            if best is not None and _iou(best[1], box) >= MATCH_IOU:
                face_id = best[0]
            else:
                face_id, self.next_id = self.next_id, self.next_id + 1
            ids.append(face_id)
        seen = {i: b for i, b in zip(ids, boxes, strict=True)}
        self.faces = [*seen.items(), *((i, b) for i, b in self.faces if i not in seen)][:REMEMBERED]
        return ids

    def to_token(self, key: bytes) -> str:
        payload = orjson.dumps({"next_id": self.next_id, "faces": self.faces, "issued_at": int(time.time())})
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}"

    @classmethod
    def from_token(cls, token: str | None, key: bytes) -> Tracker:
        """The tracker a state carries, or a fresh one when the state is absent or not acceptable."""
        if not token or "." not in token:
            return cls()
        body, _, mac = token.rpartition(".")
        if not hmac.compare_digest(mac, hmac.new(key, body.encode(), hashlib.sha256).hexdigest()):
            return cls()
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            if time.time() - int(data["issued_at"]) > STATE_TTL_S:
                return cls()
            return cls(int(data["next_id"]), [(int(i), [float(v) for v in b]) for i, b in data["faces"]])
        except (ValueError, KeyError, TypeError):
            return cls()


def measure_image(image: Jpeg, frame_id: int, tracker: Tracker, threshold: float, min_size: int) -> dict[str, Any]:
    """One ``VideoFileMeasurement``: measured faces largest first, then the rest by confidence."""
    found = []
    for slot, confidence in detect(image):
        box = slot_bbox(image, slot)
        if confidence >= threshold and min(box[2] - box[0], box[3] - box[1]) >= min_size:
            found.append((slot, confidence, box))
    found.sort(key=lambda f: f[0])  # slot order is size order
    measured, rest = found[:MEASURED_PER_IMAGE], found[MEASURED_PER_IMAGE:]
    ids = tracker.assign([box for _, _, box in measured])
    faces: list[dict[str, Any]] = []
    for face_id, (slot, confidence, box) in zip(ids, measured, strict=True):
        expressions, descriptions = score_face(image, slot)
        faces.append(
            {"face_id": face_id, "bbox": box, "confidence": confidence,
             "expressions": expressions, "descriptions": descriptions}
        )  # fmt: skip
    rest.sort(key=lambda f: -f[1])
    for _, confidence, box in rest[: LISTED_PER_IMAGE - len(faces)]:
        faces.append(
            {"face_id": None, "bbox": box, "confidence": confidence, "expressions": None, "descriptions": None}
        )
    return {"frame_id": frame_id, "faces": faces}
