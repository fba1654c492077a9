"""Progress of v1 jobs, one row per measured chunk of a source's medium, plus one outcome row (chunk -1)
per (source, medium). Inserts never overwrite: a chunk stored once stays the one result for its key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

OUTCOME = -1


@dataclass(frozen=True)
class StoredChunk:
    source_index: int
    medium: str
    chunk: int
    start_ms: int | None
    request_id: str | None
    run_id: str | None
    face_state: str | None
    result: str | None
    """The stored response as JSON text (`results` only)."""
    frames: list[list[int]] | None
    error_code: str | None
    error: str | None
    stored_at: datetime | None = None
    """When the chunk was stored (`results` only)."""


_INSERT = text(
    "INSERT INTO v1_chunk (job_id, source_index, medium, chunk, start_ms, request_id, run_id, face_state, result,"
    " frames, error_code, error) VALUES (:job_id, :source_index, :medium, :chunk, :start_ms, :request_id, :run_id,"
    " :face_state, CAST(:result AS jsonb), CAST(:frames AS jsonb), :error_code, :error)"
    " ON CONFLICT ON CONSTRAINT pk_v1_chunk DO NOTHING RETURNING chunk"
)


async def put(
    session: AsyncSession,
    job_id: uuid.UUID,
    source_index: int,
    medium: str,
    chunk: int,
    *,
    start_ms: int | None = None,
    request_id: str | None = None,
    run_id: str | None = None,
    face_state: str | None = None,
    result: bytes | None = None,
    frames: list[tuple[int, int]] | None = None,
    error_code: str | None = None,
    error: str | None = None,
) -> bool:
    """Store a chunk (or, with chunk=OUTCOME, a medium's outcome); False if that key was already stored."""
    inserted = await session.execute(
        _INSERT,
        {
            "job_id": job_id, "source_index": source_index, "medium": medium, "chunk": chunk,
            "start_ms": start_ms, "request_id": request_id, "run_id": run_id, "face_state": face_state,
            "result": None if result is None else result.decode(),
            "frames": None if frames is None else orjson.dumps(frames).decode(),
            "error_code": error_code, "error": error,
        },
    )  # fmt: skip
    return inserted.first() is not None


async def progress(session: AsyncSession, job_id: uuid.UUID) -> dict[tuple[int, str], dict[int, StoredChunk]]:
    """What is stored for a job, without the results: {(source, medium): {chunk: row}}."""
    rows = await session.execute(
        text(
            "SELECT source_index, medium, chunk, start_ms, request_id, run_id, face_state, error_code, error"
            " FROM v1_chunk WHERE job_id = :id ORDER BY source_index, medium, chunk"
        ),
        {"id": job_id},
    )
    out: dict[tuple[int, str], dict[int, StoredChunk]] = {}
    for r in rows:
        out.setdefault((r.source_index, r.medium), {})[r.chunk] = StoredChunk(
            r.source_index, r.medium, r.chunk, r.start_ms, r.request_id, r.run_id, r.face_state, None, None,
            r.error_code, r.error,
        )  # fmt: skip
    return out


async def results(session: AsyncSession, job_id: uuid.UUID) -> list[StoredChunk]:
    """Every stored chunk of a job, in order, its result as JSON text: the caller decodes one chunk at a time,
    because a job's results held all at once as objects make the garbage collector walk them over and
    over (it tripled the time of a one-hour job's ingest)."""
    rows = await session.execute(
        text(
            "SELECT source_index, medium, chunk, start_ms, request_id, run_id, face_state, result::text AS result,"
            " frames::text AS frames, error_code, error, created_at FROM v1_chunk WHERE job_id = :id"
            " ORDER BY source_index, medium, chunk"
        ),
        {"id": job_id},
    )
    return [
        StoredChunk(
            r.source_index,
            r.medium,
            r.chunk,
            r.start_ms,
            r.request_id,
            r.run_id,
            r.face_state,
            r.result,
            None if r.frames is None else orjson.loads(r.frames),
            r.error_code,
            r.error,
            r.created_at,
        )
        for r in rows
    ]
