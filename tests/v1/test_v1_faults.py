"""v1 jobs under faults: a run stopped mid-video resumes at the first missing chunk and stores each chunk
once; Hume's 429s are waited out. Real emulator, real Postgres, media over a real socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.emulator.testing import EmulatorServer
from app.jobs.schemas import submit_request
from app.jobs.service import submit
from app.v1 import backend as v1_backend
from app.wiring import build_deps
from tests.conftest import ServiceFactory, service_settings
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_mp4, make_wav
from tests.v1.media_server import GAPS, media_server
from tests.v1.test_v1_jobs import FINAL, rows


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("media")
    make_mp4(directory / "talk.mp4", 8.0, gaps=GAPS)
    make_wav(directory / "voice.wav", 6.0, gaps=GAPS)
    with media_server(directory) as url:
        yield url


async def test_a_run_stopped_mid_video_resumes_with_one_result_per_chunk(
    database_url: str, emulator: EmulatorServer, media: str
) -> None:
    settings = service_settings(
        database_url, emulator, allow_private_hosts="127.0.0.1", v1_frames_per_request=4, run_worker=False
    )
    async with build_deps(settings, pool_size=2) as deps:
        request = submit_request({"urls": [f"{media}/media/talk.mp4"], "backend": "v1", "models": {"face": {}}})
        job, *_ = await submit(deps, None, request, None)
        # Each request takes a while, so the run can be stopped between two chunks, as a killed worker is.
        emulator.set_faults(path="/v1/expression/video/file", delay_s=0.3)
        run = asyncio.create_task(v1_backend.start(deps, job.id))
        query = text("SELECT chunk, request_id, face_state FROM v1_chunk WHERE job_id = :j AND chunk >= 0 ORDER BY 1")
        deadline = time.monotonic() + 30
        while True:
            async with deps.sessionmaker() as session:
                before = list(await session.execute(query, {"j": job.id}))
            if len(before) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert 2 <= len(before) < 6, "the run should stop mid-video (24 frames, 4 a request)"
        calls_before = emulator.calls().get("POST /v1/expression/video/file", 0)

        await v1_backend.start(deps, job.id)
        async with deps.sessionmaker() as session:
            after = list(await session.execute(query, {"j": job.id}))
            status = (await session.execute(text("SELECT status FROM job WHERE id = :j"), {"j": job.id})).scalar()
    assert status == "completed"
    assert [c.chunk for c in after] == list(range(6))
    # The chunks stored before the stop were kept, not measured again; only the missing ones were sent.
    assert after[: len(before)] == before
    sent_after = emulator.calls()["POST /v1/expression/video/file"] - calls_before
    assert sent_after == 6 - len(before)
    assert all(c.face_state for c in after)


@pytest.mark.slow
def test_hume_429s_are_waited_out(make_service: ServiceFactory, emulator: EmulatorServer, media: str) -> None:
    service = make_service(
        allow_private_hosts="127.0.0.1", hume_max_retries=0, worker_retry_base_s=0.1, v1_audio_chunk_bytes=96_044
    )
    emulator.set_faults(path="/v1/expression/audio/file", status=429, times=3, retry_after=1)
    started = time.monotonic()
    with service.client() as client:
        body = {"urls": [f"{media}/media/voice.wav"], "backend": "v1", "models": {"prosody": {}}}
        job = wait_for_status(client, client.post("/v1/jobs", json=body).json()["id"], FINAL, timeout=60)
    assert job["status"] == "completed", job
    assert job["num_predictions"] > 0 and job["num_errors"] == 0
    # Three 429s each asking for 1 s: the worker's own 0.1 s backoff alone would be far quicker.
    assert time.monotonic() - started >= 3.0
    stored = rows(service.database_url, "SELECT count(*) FROM v1_chunk WHERE job_id = :j AND chunk >= 0", j=job["id"])
    # Every chunk sent once successfully, plus the three refused tries.
    assert emulator.calls()["POST /v1/expression/audio/file"] == 3 + stored[0][0]
