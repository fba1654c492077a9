"""What /metrics tells an operator: the database gauges read at scrape time, and Hume calls by outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.emulator.testing import EmulatorServer
from app.hume.errors import HumeError
from app.hume.gateway import HumeGateway
from tests.conftest import EMULATOR_KEY, ServiceFactory


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _insert_event(db: psycopg.Connection[Any], key: str, state: str, age_s: float) -> None:
    db.execute(
        "INSERT INTO inbox_event (provider, dedup_key, event_type, body, state, received_at)"
        " VALUES ('hume_batch', %s, 'test', '', %s, now() - make_interval(secs => %s))",
        (key, state, age_s),
    )


def test_gauges_report_dead_and_waiting_events_queued_tasks_and_jobs(make_service: ServiceFactory) -> None:
    service = make_service(run_worker=False)  # nothing processes, so the numbers hold still
    with psycopg.connect(service.database_url, autocommit=True) as db:
        _insert_event(db, "dead-1", "dead", 5)
        _insert_event(db, "dead-2", "dead", 5)
        _insert_event(db, "old", "received", 420)
        _insert_event(db, "done", "done", 9000)  # processed: neither dead nor waiting
    with service.client() as client:
        for i in range(3):
            response = client.post("/v1/jobs", json={"urls": [f"https://example.com/m-{i}.mp4"]})
            assert response.status_code == 202, response.text
        samples = _samples(client.get("/metrics").text)
    assert samples[("dead_events", ())] == 2
    assert 420 <= samples[("oldest_waiting_event_seconds", ())] < 480
    assert samples[("queue_depth", (("task", "submit_job"),))] == 3
    jobs = {labels[0][1]: value for (name, labels), value in samples.items() if name == "jobs"}
    assert sum(jobs.values()) == 3 and set(jobs) <= {"pending", "queued"}, jobs


def test_gauges_are_left_out_not_zero_when_the_database_cannot_answer(make_service: ServiceFactory) -> None:
    service = make_service(run_worker=False)
    with psycopg.connect(service.database_url, autocommit=True) as db:
        _insert_event(db, "dead-1", "dead", 5)
        # An exclusive lock makes the dead-event count wait past its statement timeout.
        with db.transaction():
            db.execute("LOCK TABLE inbox_event IN ACCESS EXCLUSIVE MODE")
            response = httpx.get(f"{service.url}/metrics", timeout=30)
    assert response.status_code == 200
    names = {name for name, _ in _samples(response.text)}
    assert "dead_events" not in names and "oldest_waiting_event_seconds" not in names
    assert "jobs" in {f.name for f in text_string_to_metric_families(response.text)}
    assert "http_requests_total" in names


def _count(operation: str, status: str) -> float:
    value = REGISTRY.get_sample_value("hume_request_seconds_count", {"operation": operation, "status": status})
    return value or 0.0


def test_hume_calls_are_timed_by_operation_and_outcome(emulator: EmulatorServer) -> None:
    async def scenario() -> None:
        gateway = HumeGateway(api_key=EMULATOR_KEY, base_url=emulator.base_url, max_retries=0, timeout_s=0.5)
        try:
            await gateway.start_job(urls=["https://example.com/a.mp4"], text=[], models=None, callback_url=None)
            emulator.set_faults(path="/v0/batch/jobs*", status=503, times=1)
            with pytest.raises(HumeError):
                await gateway.start_job(urls=["https://example.com/b.mp4"], text=[], models=None, callback_url=None)
            emulator.set_faults(path="/v0/batch/jobs*", delay_s=2, times=1)
            with pytest.raises(HumeError):
                await gateway.start_job(urls=["https://example.com/c.mp4"], text=[], models=None, callback_url=None)
        finally:
            await gateway.aclose()
        closed = HumeGateway(api_key=EMULATOR_KEY, base_url="http://127.0.0.1:9", max_retries=0)
        try:
            with pytest.raises(HumeError):
                await closed.job_state("nope")
        finally:
            await closed.aclose()

    before = {status: _count("batch", status) for status in ("200", "503", "timeout", "error")}
    asyncio.run(scenario())
    emulator.set_faults(clear=True)
    assert {status: _count("batch", status) - n for status, n in before.items()} == {
        "200": 1, "503": 1, "timeout": 1, "error": 1,
    }  # fmt: skip
