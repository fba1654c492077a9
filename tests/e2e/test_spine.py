"""The spine end to end: submit over HTTP, Hume (the emulator) calls back, the worker ingests, analysts read."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import Service


def wait_for_status(client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job stayed {job['status']}: {job}")
        time.sleep(0.05)


def test_submitted_job_completes_and_is_queryable(service: Service) -> None:
    """A job submitted with a URL answers 202 at once, completes via the callback, and its predictions,
    summary and CSV are served."""
    with service.client() as client:
        response = client.post(
            "/v1/jobs",
            json={"urls": ["https://example.com/interview.mp4#duration=10"], "models": {"face": {}, "prosody": {}}},
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] == "pending"
        done = wait_for_status(client, job["id"], {"completed", "failed", "rejected"})
        assert done["status"] == "completed", done
        assert done["hume_job_id"]
        assert done["num_predictions"] > 0

        page = client.get(f"/v1/jobs/{job['id']}/predictions", params={"limit": 5}).json()
        assert len(page["items"]) == 5
        assert page["next_cursor"] is not None
        first = page["items"][0]
        assert first["model"] in {"face", "prosody"}
        assert len(first["scores"]) == 48

        summary = client.get(f"/v1/jobs/{job['id']}/summary").json()
        assert set(summary["models"]) == {"face", "prosody"}
        face = summary["models"]["face"]
        assert len(face["emotions"]) == 48
        means = [e["mean"] for e in face["emotions"]]
        assert means == sorted(means, reverse=True)
        counted = sum(m["predictions"] for m in summary["models"].values())
        assert counted == done["num_predictions"]

        csv_response = client.get(f"/v1/jobs/{job['id']}/predictions.csv")
        assert csv_response.status_code == 200
        assert csv_response.headers["content-type"].startswith("text/csv")
        lines = csv_response.text.strip().splitlines()
        assert len(lines) == done["num_predictions"] + 1
        assert "Admiration" in lines[0]
