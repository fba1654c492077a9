"""A job's life in simulated time: QUEUED -> IN_PROGRESS -> COMPLETED | FAILED."""

from __future__ import annotations

import asyncio
import logging
import random

from .callbacks import send_job_callback
from .jobs import Job, build_predictions, now_ms
from .media import stable_hash
from .state import EmulatorState

log = logging.getLogger("app.emulator.lifecycle")


def simulated_durations(job: Job, realistic: bool) -> tuple[float, float]:
    """(queued, processing) in simulated seconds, deterministic per job id.

    Realistic: processing takes 30-50 % of the media length (plus start-up), like Hume's
    observed timings. Otherwise a short fixed time grows slowly with media length.
    """
    rng = random.Random(stable_hash("lifecycle", job.job_id))
    media = job.media_seconds
    if realistic:
        return 1.0 + 3.0 * rng.random(), 1.5 + media * (0.3 + 0.2 * rng.random())
    return 0.5 + rng.random(), 1.0 + 0.01 * media


async def run_job(state: EmulatorState, job: Job) -> None:
    scale = max(state.config.time_scale, 1e-6)
    queued_s, processing_s = simulated_durations(job, state.config.realistic)
    await asyncio.sleep(queued_s / scale)
    job.started_ms = now_ms()
    job.status = "IN_PROGRESS"
    await asyncio.sleep(processing_s / scale + job.extra_delay_s)
    if job.should_fail:
        job.message = "Job failed: the media could not be processed (simulated failure)."
        job.ended_ms = now_ms()
        job.status = "FAILED"
    else:
        try:
            # Large jobs take a while to generate; keep the event loop answering meanwhile.
            body, n_pred, n_err = await asyncio.to_thread(build_predictions, job)
        except Exception as exc:  # a bug in a generator must still end the job
            log.exception("prediction generation failed for job %s", job.job_id)
            job.message = f"Internal error while generating predictions: {exc}"
            job.ended_ms = now_ms()
            job.status = "FAILED"
        else:
            job.predictions, job.num_predictions, job.num_errors = body, n_pred, n_err
            job.ended_ms = max(now_ms(), job.started_ms + 1)
            job.status = "COMPLETED"
    await send_job_callback(state, job)
