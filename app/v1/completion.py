"""Completing a v1 job: once every (source, medium) has its outcome, its stored chunk results become
predictions in the same store as batch jobs, and the job completes, in one transaction under its lock.

A job stopped part-way (its tenant's Hume budget spent) is completed the same way but ends failed: what was
measured before the stop is ingested too (a medium cut short keeps its stored chunks), so it stays queryable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import structlog

from app.core import metrics
from app.core.job_status import FINAL
from app.core.prediction_rows import PredictionRow
from app.decisions.jobs import SOURCE_ERRORS
from app.deps import Deps
from app.hume.expression_rows import audio_rows, video_rows
from app.media.errors import KEEPS_MEASURED
from app.store import ingest, jobs, v1_chunks
from app.store.ingest import SourceRecord
from app.store.v1_chunks import OUTCOME, StoredChunk
from app.worker.outbox import end_job

log = structlog.get_logger(__name__)

NOT_PRESENT = "not_present"
"""Outcome code of a medium the file lacks when the job named no models (not an error then)."""
MODEL_OF = {"audio": "prosody", "video": "face"}


def _cut_short(chunks: Sequence[StoredChunk]) -> set[tuple[int, str]]:
    """(source, medium) pairs with measured chunks but no outcome: where a stopped job was cut off."""
    ended = {(c.source_index, c.medium) for c in chunks if c.chunk == OUTCOME}
    return {(c.source_index, c.medium) for c in chunks if c.chunk != OUTCOME} - ended


def source_records(
    urls: Sequence[str], chunks: Sequence[StoredChunk], stopped: str | None = None
) -> list[SourceRecord]:
    """A source fails when none of its media could be measured; a failure beside a success is a file error.
    With `stopped` (why the job stopped), a medium cut short counts as measured with that as its file error,
    and a source never reached fails with it."""
    outcomes: dict[int, list[StoredChunk]] = {}
    for c in chunks:
        if c.chunk == OUTCOME:
            outcomes.setdefault(c.source_index, []).append(c)
    cut = _cut_short(chunks) if stopped else set()
    records = []
    for i, url in enumerate(urls):
        done = outcomes.get(i, [])
        failed = [o for o in done if o.error and o.error_code != NOT_PRESENT]
        measured = [o for o in done if not o.error or o.error_code in KEEPS_MEASURED]
        partial = sorted(medium for source, medium in cut if source == i)
        if measured or partial:
            file_errors = [{"file": url, "model": MODEL_OF[o.medium], "error": o.error} for o in failed]
            cut_error = f"stopped part-way: {stopped}"
            file_errors += [{"file": url, "model": MODEL_OF[m], "error": cut_error} for m in partial]
            records.append(SourceRecord(kind="url", url=url, file_errors=file_errors))
        else:
            messages = [f"{MODEL_OF[o.medium]}: {o.error}" for o in failed] or [f"{o.error}" for o in done if o.error]
            unmeasured = stopped if stopped and not done else "nothing to measure"
            records.append(SourceRecord(kind="url", url=url, error="; ".join(messages) or unmeasured))
    return records


def add_part_errors(records: Sequence[SourceRecord], urls: Sequence[str], details: dict[str, Any] | None) -> None:
    """Per-source errors of the job's other parts (its decisions, asked before the media were measured) become
    file errors of their sources, so the job's sources and num_errors tell the whole job."""
    for error in (details or {}).get(SOURCE_ERRORS) or []:
        records[error["source"]].file_errors.append(
            {"file": urls[error["source"]], "model": error["model"], "error": f"{error['code']}: {error['error']}"}
        )


def _kept(chunks: Sequence[StoredChunk], stopped: bool) -> set[tuple[int, str]]:
    """The (source, medium) pairs whose results are ingested: those that completed, and when the job stopped
    part-way, those it cut short."""
    # A medium stopped at a media limit (MEDIA_MAX_DURATION_S...) keeps what it measured; its error is a file error.
    ended = [c for c in chunks if c.chunk == OUTCOME and (not c.error or c.error_code in KEEPS_MEASURED)]
    ok = {(c.source_index, c.medium) for c in ended}
    return (ok | _cut_short(chunks)) if stopped else ok


def _measured(chunks: Sequence[StoredChunk], stopped: bool = False) -> Iterator[tuple[StoredChunk, str]]:
    """The stored results (JSON text) of the media kept (`_kept`), each decoded only when its rows are
    made (see `v1_chunks.results`)."""
    ok = _kept(chunks, stopped)
    for c in chunks:
        if c.chunk == OUTCOME or (c.source_index, c.medium) not in ok or c.result is None:
            continue
        yield c, c.result


def face_states(urls: Sequence[str], chunks: Sequence[StoredChunk], stopped: bool = False) -> list[dict[str, Any]]:
    """Each measured video's last face_state, which carries every face id its requests gave out: passed as a
    later job's models.face.face_state, those faces keep their ids. Hume keeps a state valid 24 h from issue
    (HUME-V1-FACTS §3); `issued_at` is when its response was stored, just after Hume issued it."""
    ok = {source for source, medium in _kept(chunks, stopped) if medium == "video"}
    last: dict[int, StoredChunk] = {}
    for c in chunks:  # in chunk order: the last one seen is the source's final state
        if c.medium == "video" and c.chunk != OUTCOME and c.source_index in ok and c.face_state:
            last[c.source_index] = c
    return [
        {"source": i, "url": urls[i], "face_state": c.face_state,
         "issued_at": None if c.stored_at is None else c.stored_at.isoformat()}
        for i, c in sorted(last.items())
    ]  # fmt: skip


def prediction_rows(chunks: Sequence[StoredChunk], stopped: bool = False) -> Iterator[PredictionRow]:
    for c, result in _measured(chunks, stopped):
        if c.medium == "audio":
            yield from audio_rows(c.source_index, None, c.start_ms or 0, result)
        else:
            yield from video_rows(c.source_index, None, c.frames or [], result)


async def complete(
    deps: Deps, job_id: uuid.UUID, urls: Sequence[str], *, stopped: tuple[str, str] | None = None
) -> bool:
    """Ingest and complete; with `stopped` (error code, message) ingest what was measured and end failed.
    False if the job was already final (a second run finds nothing to do)."""
    code, message = stopped or (None, None)
    with metrics.INGEST_SECONDS.time():
        async with deps.sessionmaker.begin() as session:
            job = await jobs.lock(session, job_id)
            if job is None or job.status in FINAL:
                return False
            chunks = await v1_chunks.results(session, job_id)
            records = source_records(urls, chunks, message)
            add_part_errors(records, urls, job.details)
            # One pass, each chunk decoded when reached and its rows streamed to the store: cheaper than
            # holding every decoded result or row at once (see `v1_chunks.results`). New names (a first v1 job
            # brings ~460) are placed in memory under the model's lock (`emotion_order.lock_emotion_order`).
            count = await ingest.ingest(session, job_id, records, prediction_rows(chunks, stopped is not None))
            states = face_states(urls, chunks, stopped is not None)
            details = {**(job.details or {}), "face_states": states} if states else job.details
            await end_job(
                session, deps, job_id, "failed" if stopped else "completed", error=message, error_code=code,
                num_predictions=count, num_errors=ingest.error_count(records), details=details,
            )  # fmt: skip
    metrics.INGEST_ROWS.inc(count)
    log.info("v1 job ingested", job_id=str(job_id), predictions=count)
    return True
