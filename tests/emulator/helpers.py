"""Shared helpers for the emulator tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from hume import AsyncHumeClient, HumeClient
from hume.expression_measurement.batch import InferenceJob


def wait_done(client: HumeClient, job_id: str, timeout: float = 10.0) -> InferenceJob:
    deadline = time.monotonic() + timeout
    while True:
        job = client.expression_measurement.batch.get_job_details(job_id)
        if job.state.status in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return cast(InferenceJob, job)
        time.sleep(0.02)


async def await_done(client: AsyncHumeClient, job_id: str, within_s: float = 10.0) -> InferenceJob:
    deadline = time.monotonic() + within_s
    while True:
        job = await client.expression_measurement.batch.get_job_details(job_id)
        if job.state.status in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return cast(InferenceJob, job)
        await asyncio.sleep(0.02)


def key_tree(value: Any, depth: int = 0) -> Any:
    """The structure of a JSON value (dict keys, first list element), for shape comparisons."""
    if isinstance(value, dict):
        return {k: key_tree(v, depth + 1) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [key_tree(value[0], depth + 1)] if value else []
    return type(value).__name__
