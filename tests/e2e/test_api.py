"""The HTTP contract for upstream systems: auth, validation, idempotency, listing, health; never a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Service, create_key
from tests.e2e.test_spine import wait_for_status

URL = "https://example.com/clip.mp4#duration=4"


def _error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) >= {"code", "message"}
    return dict(body["error"])


def test_missing_and_unknown_keys_are_401(service: Service) -> None:
    """Every /v1 route needs a valid bearer key; the answer is a JSON error, not a stack trace."""
    with httpx.Client(base_url=service.url) as anonymous:
        assert _error(anonymous.get("/v1/jobs"), 401)["code"] == "unauthorized"
        assert _error(anonymous.post("/v1/jobs", json={"urls": [URL]}), 401)["code"] == "unauthorized"
    with service.client(key="hes_not-a-real-key") as wrong:
        _error(wrong.get("/v1/jobs"), 401)


def test_scope_is_enforced(service: Service) -> None:
    """A read-only key can list jobs but cannot submit (403) and submits nothing."""
    reader = create_key(service.database_url, ["read"], name="reader")
    with service.client(key=reader) as client:
        assert client.get("/v1/jobs").status_code == 200
        assert _error(client.post("/v1/jobs", json={"urls": [URL]}), 403)["code"] == "forbidden"
        assert client.get("/v1/jobs").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "urls"),
        ({"urls": []}, "urls"),
        ({"urls": [f"https://example.com/{i}.mp4" for i in range(101)]}, "urls"),
        ({"urls": ["ftp://example.com/a.mp4"]}, "urls[0]"),
        ({"urls": [URL, "not a url"]}, "urls[1]"),
        ({"urls": [URL], "models": {"smell": {}}}, "models.smell"),
        ({"urls": [URL], "models": {"face": {"fps_pred": "fast"}}}, "models.face.fps_pred"),
        ({"urls": [URL], "models": {"face": 3}}, "models.face"),
        ({"urls": "https://example.com/a.mp4"}, "urls"),
        ({"urls": [URL], "metadata": []}, "metadata"),
        ({"urls": [URL], "colour": "blue"}, "colour"),
        ({"text": ["fine", "bad\x00byte"]}, "text[1]"),
    ],
)
def test_invalid_submissions_are_422_naming_the_field(service: Service, body: dict[str, object], field: str) -> None:
    """Invalid bodies are refused with 422 and the offending field, and create no job."""
    with service.client() as client:
        error = _error(client.post("/v1/jobs", json=body), 422)
        assert error["code"] == "invalid_input"
        assert error["details"] == {"field": field}  # type: ignore[comparison-overlap]
        assert client.get("/v1/jobs").json()["items"] == []


def test_malformed_json_and_oversize_bodies(service: Service) -> None:
    """Broken JSON is a 422; a body over the limit is a 413 before it is read in full."""
    with service.client() as client:
        _error(client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}), 422)
        _error(client.post("/v1/jobs", content=b"\xff\xfe", headers={"content-type": "application/json"}), 422)
        _error(client.post("/v1/jobs", content=b"[1, 2]"), 422)
        huge = b'{"urls": ["' + b"a" * (2 << 20) + b'"]}'
        assert _error(client.post("/v1/jobs", content=huge), 413)["code"] == "payload_too_large"


def test_unknown_jobs_are_404(service: Service) -> None:
    """Unknown or malformed job ids are 404 on every job route."""
    with service.client() as client:
        for job_id in (str(uuid.uuid4()), "not-a-uuid"):
            for suffix in ("", "/summary", "/predictions", "/predictions.csv", "/timeline?model=face&emotion=Joy"):
                _error(client.get(f"/v1/jobs/{job_id}{suffix}"), 404)


def test_idempotency_key(service: Service) -> None:
    """Same key and body: the same job (no second submission). Same key, other body: 409."""
    with service.client() as client:
        headers = {"Idempotency-Key": "order-42"}
        first = client.post("/v1/jobs", json={"urls": [URL]}, headers=headers)
        again = client.post("/v1/jobs", json={"urls": [URL]}, headers=headers)
        assert first.status_code == 202 and again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        other = client.post("/v1/jobs", json={"urls": ["https://example.com/other.mp4"]}, headers=headers)
        assert _error(other, 409)["code"] == "conflict"
        assert len(client.get("/v1/jobs").json()["items"]) == 1


def test_list_jobs_pages_and_filters(service: Service) -> None:
    """Jobs list newest first, page with an opaque cursor, and filter by status."""
    with service.client() as client:
        ids = [client.post("/v1/jobs", json={"urls": [f"{URL}&n={i}"]}).json()["id"] for i in range(5)]
        for job_id in ids:
            wait_for_status(client, job_id, {"completed"})
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/jobs", params=params).json()
            seen += [j["id"] for j in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(ids))
        assert len(client.get("/v1/jobs", params={"status": "completed"}).json()["items"]) == 5
        assert client.get("/v1/jobs", params={"status": "failed"}).json()["items"] == []
        _error(client.get("/v1/jobs", params={"status": "bogus"}), 422)
        _error(client.get("/v1/jobs", params={"cursor": "!!"}), 422)
        _error(client.get("/v1/jobs", params={"limit": 0}), 422)


def test_health_metrics_and_openapi(service: Service) -> None:
    """Liveness, readiness (database reachable), Prometheus text and the OpenAPI document are public."""
    with httpx.Client(base_url=service.url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["database"] == "ok"
        metrics = client.get("/metrics")
        assert "http_requests_total" in metrics.text
        spec = client.get("/openapi.json").json()
        assert "/v1/jobs" in spec["paths"]


def test_job_with_hume_rejection_is_rejected_with_message(service: Service) -> None:
    """A job Hume refuses (sunset: the batch API answers 404) ends `rejected` with an error naming the sunset."""
    from tests.conftest import EMULATOR_KEY  # noqa: F401  (the emulator is the service's Hume)

    with service.client() as client:
        httpx.post(
            f"{service.server.settings.hume_voice_url}/_emulator/faults", json={"sunset": True}
        ).raise_for_status()
        job = client.post("/v1/jobs", json={"urls": [URL]}).json()
        done = wait_for_status(client, job["id"], {"rejected", "failed", "completed"})
        assert done["status"] == "rejected"
        assert "2026-06-15" in done["error"]["message"]
        assert done["error"]["code"] == "hume_sunset"
