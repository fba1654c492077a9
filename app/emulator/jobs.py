"""Batch jobs: their state, their JSON as Hume returns it, and their cached results."""

from __future__ import annotations

import csv
import io
import struct
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .media import MediaSource
from .predictions import predict_file

Json = dict[str, Any]

# A fixed user id: real job objects carry one (not in the SDK schema).
EMULATOR_USER_ID = "00000000-0000-4000-8000-00000000e4a1"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Job:
    job_id: str
    request: Json
    sources: list[MediaSource]
    created_ms: int
    status: str = "QUEUED"
    started_ms: int | None = None
    ended_ms: int | None = None
    message: str | None = None
    num_predictions: int = 0
    num_errors: int = 0
    predictions: bytes | None = None  # cached GET /predictions body
    artifacts: bytes | None = None  # cached artifacts ZIP
    should_fail: bool = False
    drop_callback: bool = False
    duplicate_callback: bool = False
    extra_delay_s: float = 0.0
    callback_attempts: list[Json] = field(default_factory=list)

    @classmethod
    def new(cls, request: Json, sources: list[MediaSource]) -> Job:
        job = cls(job_id=str(uuid.uuid4()), request=request, sources=sources, created_ms=now_ms())
        for src in sources:
            job.should_fail |= src.has("fail")
            job.drop_callback |= src.has("drop_callback")
            job.duplicate_callback |= src.has("duplicate_callback")
            if src.has("slow"):
                try:
                    job.extra_delay_s = max(job.extra_delay_s, float(src.markers["slow"] or 1))
                except ValueError:
                    job.extra_delay_s = max(job.extra_delay_s, 1.0)
        return job

    @property
    def media_seconds(self) -> float:
        return sum(f.duration_s for s in self.sources for f in s.files)

    def state(self) -> Json:
        state: Json = {"status": self.status, "created_timestamp_ms": self.created_ms}
        if self.status == "QUEUED":
            return state
        state["started_timestamp_ms"] = self.started_ms
        if self.status == "IN_PROGRESS":
            return state
        state["ended_timestamp_ms"] = self.ended_ms
        if self.status == "COMPLETED":
            state["num_predictions"] = self.num_predictions
            state["num_errors"] = self.num_errors
        else:
            state["message"] = self.message
        return state

    def to_json(self) -> Json:
        return {
            "type": "INFERENCE",
            "job_id": self.job_id,
            "user_id": EMULATOR_USER_ID,
            "request": self.request,
            "state": self.state(),
        }

    def sort_key(self, sort_by: str) -> int:
        value = {"started": self.started_ms, "ended": self.ended_ms}.get(sort_by, self.created_ms)
        return value if value is not None else 0


def build_predictions(job: Job) -> tuple[bytes, int, int]:
    """Generate every source's results once, as the bytes GET /predictions serves.

    Serialised per file so a one-hour job never holds its whole object tree at once.
    """
    models = job.request["models"]
    transcription = job.request["transcription"]
    parts: list[bytes] = []
    num_predictions = 0
    num_errors = 0
    for src in job.sources:
        head = b'{"source":' + orjson.dumps(src.source)
        if src.error is not None:
            num_errors += 1
            parts.append(head + b',"results":null,"error":' + orjson.dumps(src.error) + b"}")
            continue
        files: list[bytes] = []
        errors: list[Json] = []
        for f in src.files:
            if f.error is not None:
                errors.append({"file": f.name, "message": f.error})
                continue
            files.append(orjson.dumps(predict_file(f, models, transcription)))
        num_predictions += len(files)
        num_errors += len(errors)
        parts.append(
            head + b',"results":{"predictions":[' + b",".join(files) + b'],"errors":' + orjson.dumps(errors) + b"}}"
        )
    return b"[" + b",".join(parts) + b"]", num_predictions, num_errors


_CSV_PREFIX: dict[str, list[str]] = {
    "face": ["frame", "time", "prob", "box_x", "box_y", "box_w", "box_h"],
    "facemesh": [],
    "burst": ["begin", "end"],
    "prosody": ["text", "begin", "end", "confidence", "speaker_confidence"],
    "language": ["text", "begin", "end", "position_begin", "position_end", "confidence"],
    "ner": ["entity", "uri", "begin", "end", "position_begin", "position_end", "entity_confidence"],
}


def _csv_prefix(model: str, p: Json) -> list[Any]:
    t: Json = p["time"] if isinstance(p.get("time"), dict) else {}
    pos: Json = p.get("position") or {}
    if model == "face":
        b = p["box"]
        return [p["frame"], p["time"], p["prob"], b["x"], b["y"], b["w"], b["h"]]
    if model == "burst":
        return [t.get("begin"), t.get("end")]
    if model == "prosody":
        return [p.get("text"), t.get("begin"), t.get("end"), p.get("confidence"), p.get("speaker_confidence")]
    if model == "language":
        return [
            p["text"],
            t.get("begin"),
            t.get("end"),
            pos.get("begin"),
            pos.get("end"),
            p.get("confidence"),
        ]
    if model == "ner":
        return [
            p["entity"],
            p["uri"],
            t.get("begin"),
            t.get("end"),
            pos.get("begin"),
            pos.get("end"),
            p["entity_confidence"],
        ]
    return []


MAX_FACE_CROPS = 200  # keeps the ZIP small for long videos


def build_artifacts(predictions: bytes, save_faces: bool = False) -> bytes:
    """The artifacts ZIP: one CSV per model (layout is our assumption; Hume documented only
    "a compressed file of CSVs, one per model"), a row per prediction with every score.
    With ``face.save_faces`` it also holds face crops (placeholder PNGs) under ``faces/``."""
    crops: list[tuple[str, int, int]] = []
    rows: dict[str, list[list[Any]]] = {}
    headers: dict[str, list[str]] = {}
    for result in orjson.loads(predictions):
        src = result["source"]
        src_name = src.get("url") or src.get("filename") or "text"
        for pred in (result.get("results") or {}).get("predictions", []):
            for model, body in pred["models"].items():
                for group in body["grouped_predictions"]:
                    for p in group["predictions"]:
                        if save_faces and model == "face" and len(crops) < MAX_FACE_CROPS:
                            crops.append(
                                (
                                    f"faces/{pred['file']}/{group['id']}_{p['frame']}.png",
                                    int(p["box"]["w"]),
                                    int(p["box"]["h"]),
                                )
                            )
                        if model not in headers:
                            names = [e["name"] for e in p["emotions"]]
                            headers[model] = ["source", "file", "id", *_CSV_PREFIX[model], *names]
                        rows.setdefault(model, []).append(
                            [
                                src_name,
                                pred["file"],
                                group["id"],
                                *_csv_prefix(model, p),
                                *(e["score"] for e in p["emotions"]),
                            ]
                        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for model, header in headers.items():
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows[model])
            zf.writestr(f"{model}.csv", out.getvalue())
        for name, w, h in crops:
            zf.writestr(name, placeholder_png(max(1, w // 4), max(1, h // 4)))
    return buf.getvalue()


def placeholder_png(width: int, height: int) -> bytes:
    """A valid grey PNG of the crop's (scaled) size; the emulator has no pixels to crop."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
