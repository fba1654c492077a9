"""Issue 22, item 3: tenants sealed. Admin keys are global (the deployment's operator): `create-key` refuses
`--tenant` for them; a key stored with a tenant and `admin` (as `--tenant` once allowed) holds no admin grant,
so no key of one tenant reads or changes another tenant's webhook endpoints, secrets or messages, or hears
its jobs. The Hume token route can be turned off."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import psycopg

from app.emulator.testing import EmulatorServer
from app.store import api_keys
from tests.conftest import ServiceFactory, create_key
from tests.e2e.test_spine import wait_for_status
from tests.reliability.helpers import wait_until
from tests.webhook_receiver import Receiver

FAST = {"allow_private_hosts": "127.0.0.1", "webhook_retry_schedule_s": (0, 0.1, 0.1, 0.1)}
MEDIA = {"urls": ["https://example.com/interview.mp4#duration=5"], "models": {"prosody": {}}}


def stored_key(database_url: str, scopes: list[str], tenant: str) -> str:
    """A key as the store held it before `create` refused a tenant for global scopes."""
    key = api_keys.new_key()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO api_key (id, name, key_hash, scopes, tenant) VALUES (%s, %s, %s, %s, %s)",
            (uuid.uuid4(), f"{tenant}-old-admin", api_keys.hash_key(key), scopes, tenant),
        )
    return key


def endpoint_row(database_url: str, endpoint_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT url, secret, previous_secret, disabled_at FROM webhook_endpoint WHERE id = %s", (endpoint_id,)
        ).fetchone()


def test_create_key_refuses_a_tenant_for_admin_and_analyst_keys(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    for scopes in ("admin", "read,analyst", "webhooks,admin"):
        done = subprocess.run(
            [sys.executable, "-m", "app", "create-key", "--name", "k", "--scopes", scopes, "--tenant", "tA"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode != 0, done.stdout
        assert "--tenant is refused" in done.stderr and "every tenant" in done.stderr, done.stderr
        assert "hes_" not in done.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_key").fetchone() == (0,)
    # Without --tenant an admin key is made, and said to be global; a tenant's key of other scopes still is.
    made = subprocess.run(
        [sys.executable, "-m", "app", "create-key", "--name", "ops", "--scopes", "admin"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "global" in made.stdout and made.stdout.strip().splitlines()[-1].startswith("hes_")
    subprocess.run(
        [sys.executable, "-m", "app", "create-key", "--name", "t", "--scopes", "read,webhooks", "--tenant", "tA"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def test_no_key_of_one_tenant_touches_another_tenants_endpoints_or_messages(make_service: ServiceFactory) -> None:
    """Tenant B's endpoint, secret and messages, against tenant A's keys: an `admin` key stored with tenant A
    (which rotated B's secret and re-pointed B's endpoint before) and A's own `webhooks` key. Every route
    answers as for an endpoint that does not exist, B's row is unchanged, and an endpoint A registers never
    hears B's jobs. The global admin key (no tenant) still manages every endpoint."""
    service = make_service(**FAST)
    bob = create_key(service.database_url, ["submit", "read", "webhooks"], "bob", tenant="bob")
    alice_admin = stored_key(service.database_url, ["admin"], "alice")
    alice_hooks = create_key(service.database_url, ["submit", "read", "webhooks"], "alice", tenant="alice")
    with Receiver() as bobs, Receiver() as alices, service.client(bob) as b:
        registered = b.post("/v1/webhook-endpoints", json={"url": bobs.url})
        assert registered.status_code == 201, registered.text
        endpoint = registered.json()
        first = b.post("/v1/jobs", json=MEDIA).json()
        assert wait_for_status(b, first["id"], {"completed"})["status"] == "completed"
        bobs.wait_for(1)
        [message] = b.get(f"/v1/webhook-endpoints/{endpoint['id']}/messages").json()["items"]
        before = endpoint_row(service.database_url, endpoint["id"])
        base = f"/v1/webhook-endpoints/{endpoint['id']}"
        for key in (alice_admin, alice_hooks):
            with service.client(key) as a:
                assert endpoint["id"] not in [e["id"] for e in a.get("/v1/webhook-endpoints").json()["items"]]
                answers = {
                    "get": a.get(base),
                    "update": a.patch(base, json={"url": alices.url, "description": "mine now"}),
                    "rotate": a.post(f"{base}/rotate-secret"),
                    "test": a.post(f"{base}/test"),
                    "messages": a.get(f"{base}/messages"),
                    "attempts": a.get(f"{base}/messages/{message['id']}/attempts"),
                    "retry": a.post(f"/v1/webhook-messages/{message['id']}/retry"),
                    "delete": a.delete(base),
                }
                for route, answer in answers.items():
                    assert answer.status_code == 404, (route, answer.status_code, answer.text)
                    assert "whsec_" not in answer.text and bobs.url not in answer.text, route
                # The inbox's operations are the global admin's only.
                assert a.get("/v1/admin/events").status_code == 403
                assert a.post("/v1/admin/events/1/replay").status_code == 403
                # Another tenant's jobs stay out of reach too.
                assert a.get(f"/v1/jobs/{first['id']}").status_code == 404
        assert endpoint_row(service.database_url, endpoint["id"]) == before
        # An endpoint tenant A's old admin key registers hears A's own jobs at most, never B's.
        with service.client(alice_admin) as a:
            created = a.post("/v1/webhook-endpoints", json={"url": alices.url})
            assert created.status_code == 201, created.text
        second = b.post("/v1/jobs", json=MEDIA).json()
        assert wait_for_status(b, second["id"], {"completed"})["status"] == "completed"
        wait_until(lambda: len(bobs.deliveries) >= 2, 20, "B's second job.completed")
        time.sleep(1.5)  # a delivery to A would have arrived by now
        assert alices.deliveries == []
        assert [d.payload["data"]["job"]["id"] for d in bobs.deliveries] == [first["id"], second["id"]]
    # The global admin key (made without a tenant) is the operator: it sees and manages every endpoint.
    with service.client() as admin:
        assert admin.get(base).status_code == 200
        rotated = admin.post(f"{base}/rotate-secret")
        assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")


def test_an_old_tenant_admin_key_keeps_its_tenant_only(make_service: ServiceFactory) -> None:
    """Stored with tenant A and `admin`, a key reads A's jobs (its tenant), not B's, and is no operator."""
    service = make_service()
    alice = create_key(service.database_url, ["submit", "read"], "alice", tenant="alice")
    bob = create_key(service.database_url, ["submit", "read"], "bob", tenant="bob")
    old_admin = stored_key(service.database_url, ["admin"], "alice")
    with service.client(alice) as a, service.client(bob) as b:
        mine = a.post("/v1/jobs", json=MEDIA).json()
        theirs = b.post("/v1/jobs", json=MEDIA).json()
    with service.client(old_admin) as client:
        assert [j["id"] for j in client.get("/v1/jobs").json()["items"]] == [mine["id"]]
        assert client.get(f"/v1/jobs/{theirs['id']}").status_code == 404
        assert client.get("/v1/admin/events").status_code == 403


def test_the_token_route_can_be_turned_off(make_service: ServiceFactory, emulator: EmulatorServer) -> None:
    """HUME_TOKENS_ENABLED=false: the account-wide token is handed to no one (404 tokens_disabled), and Hume's
    token endpoint is never called."""
    service = make_service(hume_tokens_enabled=False)
    key = create_key(service.database_url, ["token"], "tenant-frontend", tenant="alice")
    with service.client(key) as client:
        answer = client.get("/api/hume/auth")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "tokens_disabled"
    assert "HUME_TOKENS_ENABLED" in answer.json()["error"]["message"]
    assert httpx.get(f"{service.url}/api/hume/auth").status_code == 401  # still a key first
    assert emulator.calls().get("POST /oauth2-cc/token", 0) == 0
