"""A worker process killed with SIGKILL in the middle of a v1 video, then started again.

`python -m app worker` runs in a subprocess against the test's own database; the video is served over a
real socket and every request to the emulator's v1 video endpoint is delayed, so the job is still sending
chunks when the kill lands. The restarted worker takes the stalled task back (heartbeat timeout), sends
only the chunks that were not stored, and completes the job from exactly one stored result per chunk.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.emulator.testing import EmulatorServer
from tests.conftest import ServiceFactory, start_worker, worker_environment
from tests.media_factory import make_mp4
from tests.reliability.helpers import prediction_count, rows, scalar, wait_final, wait_until
from tests.v1.media_server import EVERY_FACE, GAPS, media_server

pytestmark = pytest.mark.slow

STALLED_AFTER_S = 3.0
FRAMES_PER_REQUEST = 2
VIDEO_S = 8.0
CHUNKS = 12  # 8 s at the default 3 fps is 24 frames, 2 a request


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("media")
    make_mp4(directory / "talk.mp4", VIDEO_S, gaps=GAPS)
    with media_server(directory) as url:
        yield url


def test_worker_killed_mid_video_resumes_with_one_result_per_chunk(
    make_service: ServiceFactory,
    emulator: EmulatorServer,
    media: str,
    workers: list[subprocess.Popen[bytes]],
) -> None:
    service = make_service(run_worker=False, allow_private_hosts="127.0.0.1")
    url = service.database_url
    env = worker_environment(
        service, emulator, STALLED_AFTER_S,
        ALLOW_PRIVATE_HOSTS="127.0.0.1", V1_FRAMES_PER_REQUEST=str(FRAMES_PER_REQUEST),
    )  # fmt: skip
    # Each chunk takes 0.3 s or more at Hume, so the video takes seconds and the kill lands between chunks.
    emulator.set_faults(path="/v1/expression/video/file", delay_s=0.3)
    chunks_sql = "SELECT chunk, request_id, run_id FROM v1_chunk WHERE job_id = %s AND chunk >= 0 ORDER BY chunk"
    first = start_worker(env, workers)
    with service.client() as client:
        body = {"urls": [f"{media}/media/talk.mp4"], "backend": "v1", "models": {"face": EVERY_FACE}}
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        wait_until(
            lambda: scalar(url, "SELECT count(*) FROM v1_chunk WHERE job_id = %s AND chunk >= 0", job_id) >= 3,
            60,
            "three chunks to be stored",
            every=0.02,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = rows(url, chunks_sql, job_id)
        assert 3 <= len(before) < CHUNKS, "the kill should land mid-video"
        assert scalar(url, "SELECT status FROM job WHERE id = %s", job_id) != "completed"
        assert prediction_count(url, job_id) == 0
        calls_before = emulator.calls().get("POST /v1/expression/video/file", 0)

        restarted_at = time.monotonic()
        start_worker(env, workers)
        done = wait_final(client, job_id, timeout=STALLED_AFTER_S + 40)
        recovered_s = time.monotonic() - restarted_at
    assert done["status"] == "completed", done
    assert done["num_errors"] == 0

    after = rows(url, chunks_sql, job_id)
    # Exactly one stored result per chunk, and those stored before the kill were kept as they were.
    assert [c[0] for c in after] == list(range(CHUNKS))
    assert after[: len(before)] == before
    assert all(request_id and run_id for _, request_id, run_id in after)
    assert len({request_id for _, request_id, _ in after}) == CHUNKS
    # Only the missing chunks were sent again (the one in flight at the kill may have been sent twice).
    sent_after = emulator.calls()["POST /v1/expression/video/file"] - calls_before
    assert sent_after == CHUNKS - len(before)
    assert calls_before <= len(before) + 1

    # The predictions are exactly the measured faces the stored chunks hold, counted apart from the store.
    faces = scalar(
        url,
        "SELECT count(*) FROM v1_chunk c, jsonb_array_elements(c.result -> 'measurements') AS m,"
        " jsonb_array_elements(m -> 'faces') AS f WHERE c.job_id = %s AND c.chunk >= 0"
        " AND f ->> 'face_id' IS NOT NULL",
        job_id,
    )
    assert faces > 0
    assert done["num_predictions"] == faces == prediction_count(url, job_id)
    # The restarted worker picks the stalled task up within the heartbeat timeout and a reconcile round or two.
    assert recovered_s < STALLED_AFTER_S + 25, recovered_s
