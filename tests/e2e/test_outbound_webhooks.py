"""Our webhooks to upstream systems, end to end: the service on a socket, the emulator as Hume, real
Postgres, and a receiver that verifies every delivery with the `standardwebhooks` library."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Service, ServiceFactory, create_key
from tests.e2e.test_spine import wait_for_status
from tests.reliability.helpers import rows, scalar, wait_until
from tests.webhook_receiver import Receiver

FAST = {"allow_private_hosts": "127.0.0.1", "webhook_retry_schedule_s": (0, 0.1, 0.1, 0.1)}
MEDIA = {"urls": ["https://example.com/interview.mp4#duration=5"], "models": {"prosody": {}}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def register(client: httpx.Client, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/webhook-endpoints", json={"url": receiver.url, **fields})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    assert endpoint["secret"].startswith("whsec_")
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def attempts_of(client: httpx.Client, endpoint_id: str, message_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def only_message(client: httpx.Client, endpoint_id: str, state: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        items = client.get(f"/v1/webhook-endpoints/{endpoint_id}/messages").json()["items"]
        return items[0] if len(items) == 1 and items[0]["state"] == state else None

    found: dict[str, Any] = wait_until(settled, 20, f"one {state} message")
    return found


def test_completed_job_sends_one_signed_message_per_subscribed_endpoint(
    make_service: ServiceFactory, receiver: Receiver
) -> None:
    service = make_service(**FAST)
    other_key = create_key(service.database_url, ["webhooks"], name="another team")
    with service.client() as client, service.client(other_key) as other, Receiver() as failed_only:
        mine = register(client, receiver)
        register(client, failed_only, events=["job.failed"])
        # Another key's endpoint: it did not submit the job and is no admin, so it hears nothing.
        with Receiver() as stranger:
            register(other, stranger)
            job = client.post("/v1/jobs", json=MEDIA).json()
            assert wait_for_status(client, job["id"], {"completed"})["status"] == "completed"
            [delivery] = receiver.wait_for(1)
            time.sleep(1.5)  # anything else would have arrived by now
            assert stranger.deliveries == [] and failed_only.deliveries == []
        assert len(receiver.deliveries) == 1
        assert delivery.verified_by == [mine["secret"]]
        body = delivery.payload
        assert body["type"] == "job.completed"
        assert body["data"]["job"]["id"] == job["id"] and body["data"]["job"]["status"] == "completed"
        assert body["data"]["links"]["summary"].endswith(f"/v1/jobs/{job['id']}/summary")
        assert len(delivery.body) < 2000, "a link, never the predictions"
        assert "authorization" not in delivery.headers
        message = only_message(client, mine["id"], "delivered")
        assert message["msg_id"] == delivery.msg_id
        [attempt] = attempts_of(client, mine["id"], message["id"])
        assert attempt["status_code"] == 200 and attempt["error"] is None
    # A first-time success never starts the endpoint's failing clock.
    assert scalar(service.database_url, "SELECT count(*) FROM webhook_endpoint WHERE failing_since IS NOT NULL") == 0


def test_failing_receiver_is_retried_with_the_same_webhook_id(make_service: ServiceFactory, receiver: Receiver) -> None:
    service = make_service(**FAST)
    receiver.statuses = [500, 500]
    with service.client() as client:
        endpoint = register(client, receiver)
        assert client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 202
        deliveries = receiver.wait_for(3)
        message = only_message(client, endpoint["id"], "delivered")
        tries = attempts_of(client, endpoint["id"], message["id"])
    assert [d.payload["type"] for d in deliveries] == ["ping"] * 3
    assert len({d.msg_id for d in deliveries}) == 1
    assert all(d.verified_by for d in deliveries)
    assert [a["status_code"] for a in tries] == [500, 500, 200]
    assert len(tries[0]["response"].encode()) <= 500, "only the first 500 bytes of an answer are kept"


def test_410_gone_disables_the_endpoint(make_service: ServiceFactory, receiver: Receiver) -> None:
    service = make_service(**FAST)
    receiver.statuses = [410]
    with service.client() as client:
        endpoint = register(client, receiver)
        client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        only_message(client, endpoint["id"], "failed")
        shown = client.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
        assert shown["disabled"] is True and "410" in shown["disabled_reason"]
        message = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/messages").json()["items"][0]
        retried = client.post(f"/v1/webhook-messages/{message['id']}/retry")
        assert retried.status_code == 409
        # Enabled again by its owner, a retry sends it.
        assert client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"disabled": False}).status_code == 200
        assert client.post(f"/v1/webhook-messages/{message['id']}/retry").status_code == 202
        receiver.wait_for(2)
        only_message(client, endpoint["id"], "delivered")


def test_slow_receiver_times_out_and_is_retried(make_service: ServiceFactory, receiver: Receiver) -> None:
    service = make_service(**FAST, webhook_timeout_s=0.5)
    receiver.delays_s = [2.0]
    with service.client() as client:
        endpoint = register(client, receiver)
        client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        message = only_message(client, endpoint["id"], "delivered")
        tries = attempts_of(client, endpoint["id"], message["id"])
    assert tries[0]["status_code"] is None and "longer than 0.5 s" in tries[0]["error"]
    assert tries[0]["duration_ms"] < 1500
    assert tries[-1]["status_code"] == 200


def test_rotation_signs_with_both_secrets_for_the_overlap(make_service: ServiceFactory, receiver: Receiver) -> None:
    service = make_service(**FAST)
    with service.client() as client:
        endpoint = register(client, receiver)
        rotated = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret").json()
        assert rotated["secret"] != endpoint["secret"] and rotated["previous_secret_expires_at"]
        receiver.secrets.append(rotated["secret"])
        client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        [delivery] = receiver.wait_for(1)
    assert sorted(delivery.verified_by) == sorted([endpoint["secret"], rotated["secret"]])
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "https://example.com/" + "a" * 10_000}, "url"),
        ({"url": "https://example.com/hook", "events": ["job.exploded"]}, "events"),
        ({"url": "https://example.com/hook", "events": "job.completed"}, "events"),
        ({"events": ["job.completed"]}, "url"),
        ({"url": "https://example.com/hook", "colour": "red"}, "colour"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_field(service: Service, body: dict[str, Any], field: str) -> None:
    """Without ALLOW_PRIVATE_HOSTS, loopback and metadata addresses are refused like any bad input."""
    with service.client() as client:
        response = client.post("/v1/webhook-endpoints", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(f"{field}:")


def test_endpoints_belong_to_their_key(service: Service) -> None:
    other_key = create_key(service.database_url, ["webhooks"], name="another team")
    with service.client(other_key) as other, service.client() as admin:
        mine = other.post("/v1/webhook-endpoints", json={"url": "https://1.1.1.1/hook"}).json()
        reader = create_key(service.database_url, ["read"], name="reader")
        with service.client(reader) as read_only:
            assert read_only.get("/v1/webhook-endpoints").status_code == 403
        made = admin.post("/v1/webhook-endpoints", json={"url": "https://1.1.1.1/admin"})
        assert made.status_code == 201, made.text
        admin_made = made.json()
        assert other.get(f"/v1/webhook-endpoints/{admin_made['id']}").status_code == 404
        assert [e["id"] for e in other.get("/v1/webhook-endpoints").json()["items"]] == [mine["id"]]
        assert "secret" not in other.get(f"/v1/webhook-endpoints/{mine['id']}").json()
        assert other.delete(f"/v1/webhook-endpoints/{mine['id']}").status_code == 204
        assert other.get(f"/v1/webhook-endpoints/{mine['id']}").status_code == 404


def test_undelivered_messages_are_recorded_in_the_database(make_service: ServiceFactory, receiver: Receiver) -> None:
    """Every attempt is a row: the delivery log survives the process."""
    service = make_service(**FAST)
    receiver.statuses = [503]
    with service.client() as client:
        endpoint = register(client, receiver)
        client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        only_message(client, endpoint["id"], "delivered")
    stored = rows(service.database_url, "SELECT status_code FROM webhook_attempt ORDER BY id")
    assert [r[0] for r in stored] == [503, 200]
    assert scalar(service.database_url, "SELECT count(*) FROM webhook_message WHERE state = 'delivered'") == 1
    # The success stopped the endpoint's failing clock (the 5-day disable counts from its first failure).
    assert scalar(service.database_url, "SELECT count(*) FROM webhook_endpoint WHERE failing_since IS NULL") == 1


def test_notify_url_hears_its_own_job_with_the_secret_returned_at_submit(
    make_service: ServiceFactory, receiver: Receiver
) -> None:
    service = make_service(**FAST)
    with service.client() as client:
        submitted = client.post(
            "/v1/jobs", json={**MEDIA, "notify_url": receiver.url}, headers={"Idempotency-Key": "a"}
        )
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()
        assert job["notify_secret"].startswith("whsec_")
        receiver.secrets.append(job["notify_secret"])
        # Another job of the same key, without notify_url: the one-off endpoint is not told of it.
        other = client.post("/v1/jobs", json={**MEDIA, "metadata": {"n": 2}}).json()
        for ended in (job, other):
            assert wait_for_status(client, ended["id"], {"completed"})["status"] == "completed"
        [delivery] = receiver.wait_for(1)
        time.sleep(1.5)  # the other job's end would have arrived by now
        assert len(receiver.deliveries) == 1
        assert delivery.verified_by == [job["notify_secret"]]
        assert delivery.payload["type"] == "job.completed"
        assert delivery.payload["data"]["job"]["id"] == job["id"]
        # The secret is shown once: neither a read nor an Idempotency-Key retry repeats it.
        assert "notify_secret" not in client.get(f"/v1/jobs/{job['id']}").json()
        again = client.post("/v1/jobs", json={**MEDIA, "notify_url": receiver.url}, headers={"Idempotency-Key": "a"})
        assert again.status_code == 200 and again.json()["id"] == job["id"]
        assert "notify_secret" not in again.json()
        # The endpoint is listed with its owner's endpoints, marked with its job.
        [endpoint] = client.get("/v1/webhook-endpoints").json()["items"]
        assert endpoint["job_id"] == job["id"] and endpoint["url"] == receiver.url
    assert scalar(service.database_url, "SELECT count(*) FROM webhook_endpoint") == 1


@pytest.mark.parametrize(
    "notify_url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/hook",
        "https://example.com/" + "a" * 10_000,
        "",
        42,
    ],
)
def test_bad_notify_url_is_refused_naming_the_field(service: Service, notify_url: object) -> None:
    with service.client() as client:
        response = client.post("/v1/jobs", json={**MEDIA, "notify_url": notify_url})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["message"].startswith("notify_url:")
        assert client.get("/v1/jobs").json()["items"] == [], "a refused submit stores no job"
