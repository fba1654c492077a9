"""The v1 backend's start: download each source (guarded), measure its media chunk by chunk through Hume
v1, then complete the job. Registered as JobBackend "v1"; the `submit_job` task runs it.

One task runs a whole job, not one task per chunk: a medium must be downloaded and decoded in order
anyway, and video chunks chain `face_state`, so per-chunk tasks would each re-download and re-decode the
prefix (or need storage shared by workers). Robustness comes from the stored chunks instead: every run
(a retry, or a requeue after a killed worker) skips what is stored and resumes at the first missing chunk.
A transient Hume error after progress in this run re-queues a fresh task (with the wait Hume asked for)
instead of spending the task's tries, so a long job is not failed by a handful of 429s spread over hours.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from app.core.job_status import FINAL
from app.deps import Deps, JobBackend
from app.egress.download import FetchLimits, download
from app.egress.errors import EgressError
from app.egress.pinned import PinnedClient
from app.egress.url_guard import UrlGuard
from app.hume.errors import HumeAuthError, HumeMediaRefused, HumeRejectedError, HumeTransientError
from app.hume.expression_client import AudioOptions, FaceOptions
from app.media.errors import MediaError, NoAudioStream, NoVideoStream
from app.store import jobs, v1_chunks
from app.store.v1_chunks import OUTCOME, StoredChunk
from app.usage.budget import BudgetExhausted
from app.v1.completion import NOT_PRESENT, complete
from app.v1.medium_measurement import VideoOptions, measure_audio, measure_video
from app.worker.job_starter import defer_start
from app.worker.outbox import end_job

log = structlog.get_logger(__name__)

MEDIA_OF = {"prosody": "audio", "face": "video"}


def _now() -> datetime:
    return datetime.now(UTC)


def wanted_media(models: dict[str, Any] | None) -> tuple[list[str], bool]:
    """(media to measure, whether a missing stream is an error): named models must be measurable;
    with none named, whatever the file holds is measured."""
    if not models:
        return ["audio", "video"], False
    return [MEDIA_OF[m] for m in ("prosody", "face") if m in models], True


def video_options(deps: Deps, models: dict[str, Any] | None) -> VideoOptions:
    """The job's v1 face options (checked at submit, app/jobs/options.V1FaceOptions); those not given stay
    None and are not sent, so Hume's defaults apply."""
    face = (models or {}).get("face") or {}
    fps = face.get("fps")
    return VideoOptions(
        fps=deps.settings.v1_face_fps if fps is None else float(fps),
        face=FaceOptions(threshold=face.get("threshold"), min_size=face.get("min_size")),
        face_state=face.get("face_state"),
    )


def audio_options(models: dict[str, Any] | None) -> AudioOptions:
    """The job's v1 prosody options (app/jobs/options.V1ProsodyOptions); not given: not sent."""
    prosody = (models or {}).get("prosody") or {}
    return AudioOptions(measurement_timer_ms=prosody.get("measurement_timer_ms"))


async def _outcome(deps: Deps, job_id: uuid.UUID, source: int, medium: str, *, code: str | None = None,
                   error: str | None = None, chunks: int = 0) -> None:  # fmt: skip
    async with deps.sessionmaker.begin() as session:
        await v1_chunks.put(session, job_id, source, medium, OUTCOME, start_ms=chunks, error_code=code, error=error)


async def _measure_source(
    deps: Deps, client: PinnedClient, job_id: uuid.UUID, source: int, url: str, request: dict[str, Any],
    progress: dict[tuple[int, str], dict[int, StoredChunk]],
) -> None:  # fmt: skip
    """Measure the source's media that have no outcome yet."""
    media, strict = wanted_media(request.get("models"))
    todo = [m for m in media if OUTCOME not in progress.get((source, m), {})]
    if not todo:
        return
    limits = FetchLimits(
        max_bytes=deps.settings.media_max_bytes,
        read_timeout_s=deps.settings.media_fetch_read_timeout_s,
        total_timeout_s=deps.settings.media_fetch_timeout_s,
    )
    try:
        async with download(client, url, limits) as file:
            for medium in todo:
                stored = progress.get((source, medium), {})
                try:
                    if medium == "audio":
                        options = audio_options(request.get("models"))
                        count = await measure_audio(deps, job_id, source, file.path, stored, options)
                    else:
                        count = await measure_video(
                            deps, job_id, source, file.path, stored, video_options(deps, request.get("models"))
                        )
                except (NoAudioStream, NoVideoStream) as exc:
                    code = exc.code if strict else NOT_PRESENT
                    await _outcome(deps, job_id, source, medium, code=code, error=exc.message)
                    continue
                except MediaError as exc:
                    await _outcome(deps, job_id, source, medium, code=exc.code, error=exc.message)
                    continue
                except HumeMediaRefused as exc:
                    await _outcome(deps, job_id, source, medium, code=exc.code, error=str(exc))
                    continue
                await _outcome(deps, job_id, source, medium, chunks=count)
    except EgressError as exc:
        for medium in todo:
            await _outcome(deps, job_id, source, medium, code=exc.code, error=exc.message)


def _stored(progress: dict[tuple[int, str], dict[int, StoredChunk]]) -> int:
    return sum(len(chunks) for chunks in progress.values())


async def start(deps: Deps, job_id: uuid.UUID) -> None:
    async with deps.sessionmaker.begin() as session:
        job = await jobs.get(session, job_id)
        if job is None or job.status in FINAL:
            return
        await jobs.advance(session, job_id, "in_progress", started_at=_now(), submitted_at=_now())
        await jobs.touch(session, job_id, submit_attempts=job.submit_attempts + 1)
        progress = await v1_chunks.progress(session, job_id)
        request: dict[str, Any] = dict(job.request)
    urls: list[str] = list(request.get("urls") or [])
    guard = UrlGuard.from_setting(deps.settings.outbound_allow_list)
    try:
        async with PinnedClient(guard, read_timeout_s=deps.settings.media_fetch_read_timeout_s) as client:
            for source, url in enumerate(urls):
                await _measure_source(deps, client, job_id, source, url, request, progress)
    except HumeTransientError as exc:
        async with deps.sessionmaker() as session:
            progressed = _stored(await v1_chunks.progress(session, job_id)) > _stored(progress)
        if not progressed:
            raise
        wait = max(exc.retry_after or 0.0, deps.settings.worker_retry_base_s)
        async with deps.sessionmaker.begin() as session:
            await defer_start(session, deps, job_id, in_s=wait)
        log.warning("v1 job paused; resuming later", job_id=str(job_id), error=str(exc), in_s=wait)
        return
    except HumeRejectedError as exc:
        code = exc.code if isinstance(exc, HumeAuthError) else "hume_rejected"
        async with deps.sessionmaker.begin() as session:
            await end_job(session, deps, job_id, "rejected", error=str(exc), error_code=code)
        log.warning("v1 job rejected by hume", job_id=str(job_id), error=str(exc))
        return
    except BudgetExhausted as exc:
        # What was measured before is kept: the stored chunks are ingested, and the job ends failed.
        await complete(deps, job_id, urls, stopped=(exc.code, str(exc)))
        log.warning("v1 job stopped: tenant's Hume budget spent", job_id=str(job_id), error=str(exc))
        return
    await complete(deps, job_id, urls)


async def give_up(deps: Deps, job_id: uuid.UUID, error: str) -> None:
    async with deps.sessionmaker.begin() as session:
        await end_job(
            session, deps, job_id, "failed", error=f"Hume unavailable: {error}", error_code="hume_unavailable"
        )


BACKEND = JobBackend(start=start, give_up=give_up)
