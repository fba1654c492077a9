"""No job is left waiting on nothing (issue 22's stuck jobs): options Hume's docs rule out are refused at
submit; a job whose start fails in an unexpected way ends `failed` on its last try and announces it; the
reconciler ends a job whose start task is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.deps import Deps
from app.emulator.testing import EmulatorServer
from app.jobs.schemas import submit_request
from app.jobs.service import submit
from app.store import jobs
from app.worker import job_starter
from tests.conftest import ServiceFactory
from tests.e2e.test_outbound_webhooks import register
from tests.e2e.test_spine import wait_for_status
from tests.webhook_receiver import Receiver

MEDIA = "https://example.com/interview.mp4#duration=5"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.mark.parametrize(
    ("models", "field"),
    [
        ({"face": {"fps_pred": -1}}, "models.face.fps_pred"),
        ({"face": {"prob_threshold": 1.5}}, "models.face.prob_threshold"),
        ({"face": {"min_face_size": -3}}, "models.face.min_face_size"),
        ({"prosody": {"window": {"length": 0.2}}}, "models.prosody.window.length"),
    ],
)
def test_batch_options_outside_hume_s_ranges_are_refused_at_submit(
    make_service: ServiceFactory, emulator: EmulatorServer, models: dict[str, object], field: str
) -> None:
    service = make_service()
    with service.client() as client:
        answer = client.post("/v1/jobs", json={"urls": [MEDIA], "models": models})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"] == {"field": field}
    assert emulator.calls().get("POST /v0/batch/jobs", 0) == 0
    # The edges of the ranges are accepted.
    with service.client() as client:
        ok = client.post("/v1/jobs", json={"urls": [MEDIA], "models": {"face": {"fps_pred": 0, "prob_threshold": 1}}})
    assert ok.status_code == 202, ok.text


def test_an_unexpected_failure_on_the_last_try_ends_the_job_failed_and_announces_it(
    make_service: ServiceFactory, emulator: EmulatorServer, receiver: Receiver
) -> None:
    """Hume answers 200 with a body that is no job id: not a Hume error the backend knows, so the task fails
    every try; on the last one the job ends `failed` with the error, and job.failed goes out."""
    service = make_service(
        allow_private_hosts="127.0.0.1", worker_max_attempts=2, worker_retry_base_s=0.1, worker_retry_cap_s=0.2,
        webhook_retry_schedule_s=(0, 0.1),
    )  # fmt: skip
    emulator.set_faults(path="/v0/batch/jobs", method="POST", status=200, body=["no", "job", "id"], times=10)
    with service.client() as client:
        register(client, receiver, events=["job.failed"])
        job = client.post("/v1/jobs", json={"urls": [MEDIA]}).json()
        done = wait_for_status(client, job["id"], {"completed", "failed", "rejected"}, timeout=60)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "job_error" and "2 tries" in done["error"]["message"]
    assert emulator.calls()["POST /v0/batch/jobs"] == 2
    [delivery] = receiver.wait_for(1, timeout=20)
    assert delivery.payload["type"] == "job.failed" and delivery.payload["data"]["job"]["id"] == job["id"]


async def test_the_reconciler_ends_a_job_whose_start_task_is_gone(deps: Deps) -> None:
    request = submit_request({"urls": [MEDIA], "backend": "v1"})
    job, *_ = await submit(deps, None, request, None)
    waiting, *_ = await submit(deps, None, submit_request({"urls": [MEDIA + "&2"], "backend": "v1"}), None)
    async with deps.sessionmaker.begin() as session:
        await jobs.advance(session, job.id, "in_progress")
        # Its task is removed (an operator purged the queue); the other job's task stays.
        await session.execute(
            text("DELETE FROM procrastinate_jobs WHERE queueing_lock = :lock"), {"lock": f"submit:{job.id}"}
        )
        await session.execute(text("UPDATE job SET updated_at = now() - interval '1 hour'"))
    assert await job_starter.end_orphans(deps) == 1
    async with deps.sessionmaker() as session:
        ended, kept = await jobs.get(session, job.id), await jobs.get(session, waiting.id)
    assert ended is not None and ended.status == "failed" and ended.error_code == "job_error"
    assert ended.error and "start task" in ended.error
    assert kept is not None and kept.status == "pending"
    assert await job_starter.end_orphans(deps) == 0  # ended once


async def test_a_job_just_touched_is_not_taken_for_an_orphan(deps: Deps) -> None:
    job, *_ = await submit(deps, None, submit_request({"urls": [MEDIA], "backend": "v1"}), None)
    async with deps.sessionmaker.begin() as session:
        await session.execute(text("DELETE FROM procrastinate_jobs"))
    assert await job_starter.end_orphans(deps) == 0
    async with deps.sessionmaker() as session:
        still = await jobs.get(session, job.id)
    assert still is not None and still.status == "pending"


async def test_enqueueing_a_start_twice_leaves_the_transaction_usable(deps: Deps) -> None:
    """The second defer is refused (one start waits per job) without aborting the caller's transaction:
    what the caller writes after it still commits."""
    job, *_ = await submit(deps, None, submit_request({"urls": [MEDIA], "backend": "v1"}), None)
    async with deps.sessionmaker.begin() as session:
        assert await job_starter.defer_start(session, deps, job.id) is False
        await jobs.touch(session, job.id, details={"after": "the refused defer"})
    async with deps.sessionmaker() as session:
        stored = await jobs.get(session, job.id)
    assert stored is not None and stored.details == {"after": "the refused defer"}
