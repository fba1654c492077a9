"""Measure one downloaded medium through Hume v1, chunk by chunk, storing each chunk's result as it comes.

Chunks are cut deterministically (same file, same settings, same chunks), so a resumed run decodes the
medium again, skips the chunks already stored and sends the first missing one; a duplicate insert (two
runs racing) is a no-op under the table's unique key. Video chunks chain Hume's `face_state`, so a face
keeps its id through the whole video: the chunk after a stored one continues from that one's state.

A medium is decoded, from its open to its last chunk, only while it holds one of the process's
MEDIA_DECODE_CONCURRENCY decode slots: a decode's memory (a few frames of up to MEDIA_MAX_FRAME_BYTES) stays
in the decoder between chunks, so bounding decodes, not chunk steps, is what bounds the process.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import orjson

from app.deps import Deps
from app.hume import billing
from app.hume.expression_client import AudioOptions, ExpressionClient, FaceOptions
from app.media.audio_chunks import AudioChunk, iter_audio_chunks
from app.media.limits import MediaLimits
from app.media.off_loop import next_item
from app.media.video_frames import JpegFrame, iter_frame_batches, iter_jpeg_frames
from app.store import v1_chunks
from app.store.v1_chunks import StoredChunk
from app.v1.hume_spend import metered


@dataclass(frozen=True)
class VideoOptions:
    fps: float
    face: FaceOptions
    face_state: str | None = None
    """A state from an earlier job: the medium's first request continues its face ids."""


async def measure_audio(
    deps: Deps, job_id: uuid.UUID, source: int, path: Path, stored: dict[int, StoredChunk], options: AudioOptions
) -> int:
    """Send the audio's missing chunks; returns how many chunks the medium has."""
    client = deps.expression
    limits = MediaLimits.from_settings(deps.settings)
    async with deps.decode_slots:
        chunks: Generator[AudioChunk, None, None] = iter_audio_chunks(  # type: ignore[assignment]
            path, max_bytes=deps.settings.v1_audio_chunk_bytes, limits=limits
        )
        return await _send_audio(deps, client, job_id, source, chunks, stored, options)


async def _send_audio(
    deps: Deps, client: ExpressionClient, job_id: uuid.UUID, source: int, chunks: Generator[AudioChunk, None, None],
    stored: dict[int, StoredChunk], options: AudioOptions,
) -> int:  # fmt: skip
    count = 0
    # closing: a failure mid-way closes the generator, and with it the decoder's file.
    with contextlib.closing(chunks):
        while (chunk := await next_item(chunks)) is not None:
            count += 1
            if chunk.index in stored:
                continue
            cost = billing.audio_request_seconds(chunk.end_ms - chunk.start_ms)
            send = partial(client.measure_audio, chunk.wav, options=options)
            measured = await metered(deps, job_id, source, "audio", chunk.index, cost, send)
            async with deps.sessionmaker.begin() as session:
                await v1_chunks.put(
                    session, job_id, source, "audio", chunk.index, start_ms=chunk.start_ms,
                    request_id=measured.request_id, run_id=measured.run_id, result=orjson.dumps(measured.result),
                )  # fmt: skip
    return count


async def measure_video(
    deps: Deps, job_id: uuid.UUID, source: int, path: Path, stored: dict[int, StoredChunk], options: VideoOptions
) -> int:
    """Send the video's missing frame batches, chaining face_state; returns how many batches it has."""
    client = deps.expression
    limits = MediaLimits.from_settings(deps.settings)
    async with deps.decode_slots:
        frames: Generator[JpegFrame, None, None] = iter_jpeg_frames(  # type: ignore[assignment]
            path, fps=options.fps, limits=limits
        )
        return await _send_video(deps, client, job_id, source, frames, stored, options)


async def _send_video(
    deps: Deps, client: ExpressionClient, job_id: uuid.UUID, source: int, frames: Generator[JpegFrame, None, None],
    stored: dict[int, StoredChunk], options: VideoOptions,
) -> int:  # fmt: skip
    batches = iter_frame_batches(frames, max_frames=deps.settings.v1_frames_per_request)
    count = 0
    face_state = options.face_state
    with contextlib.closing(frames):
        while (batch := await next_item(batches)) is not None:
            count += 1
            done = stored.get(batch.index)
            if done is not None:
                face_state = done.face_state
                continue
            images = [f.jpeg for f in batch.frames]
            send = partial(client.measure_video, images, face_state=face_state, options=options.face)
            cost = billing.video_request_seconds(len(images))
            measured = await metered(deps, job_id, source, "video", batch.index, cost, send)
            face_state = measured.face_state
            async with deps.sessionmaker.begin() as session:
                await v1_chunks.put(
                    session, job_id, source, "video", batch.index,
                    start_ms=batch.frames[0].timestamp_ms, request_id=measured.request_id, run_id=measured.run_id,
                    face_state=face_state, result=orjson.dumps(measured.result),
                    frames=[(f.source_frame, f.timestamp_ms) for f in batch.frames],
                )  # fmt: skip
    return count
