"""Issue 11, finding 8: tenants cannot see each other's jobs; `analyst` reads all tenants; `admin` grants
exactly its row of the scope table; URLs with credentials are refused naming the field."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from app.store import api_keys
from app.store.db import make_engine, make_sessionmaker
from tests.conftest import Service

URL = "https://example.com/clip.mp4#duration=4"


def _key(database_url: str, scopes: list[str], tenant: str) -> str:
    async def create() -> str:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await api_keys.create(session, name=f"{tenant}-key", scopes=scopes, tenant=tenant)
        finally:
            await engine.dispose()

    return asyncio.run(create())


def test_a_tenant_never_sees_another_tenants_jobs(service: Service) -> None:
    """A `read` key of tenant B sees none of tenant A's jobs: not in the list, not by id (404, like a job
    that does not exist), not in its summary, predictions or CSV, not in /v1/emotions/top."""
    alice = _key(service.database_url, ["submit", "read"], "alice")
    bob = _key(service.database_url, ["submit", "read"], "bob")
    with service.client(key=alice) as client:
        job = client.post("/v1/jobs", json={"urls": [URL], "metadata": {"secret": "alice"}}).json()
        assert job["tenant"] == "alice"
        from tests.e2e.test_spine import wait_for_status

        wait_for_status(client, job["id"], {"completed"})
        assert [j["id"] for j in client.get("/v1/jobs").json()["items"]] == [job["id"]]
        assert client.get("/v1/emotions/top", params={"model": "face", "emotion": "Joy"}).json()["items"]
    with service.client(key=bob) as client:
        assert client.get("/v1/jobs").json()["items"] == []
        for suffix in ("", "/summary", "/predictions", "/predictions.csv", "/timeline?model=face&emotion=Joy"):
            assert client.get(f"/v1/jobs/{job['id']}{suffix}").status_code == 404, suffix
        assert client.get("/v1/emotions/top", params={"model": "face", "emotion": "Joy"}).json()["items"] == []


def test_analyst_reads_every_tenant_and_admin_is_explicit(service: Service) -> None:
    """`analyst` reads all tenants but cannot submit; `admin` operates events and reads all tenants, but no
    longer passes every scope check silently (it cannot submit or spend TTS without those scopes)."""
    alice = _key(service.database_url, ["submit", "read"], "alice")
    # Global keys: created without a tenant (`default`); a tenant is refused for them (test_tenants_sealed).
    analyst = _key(service.database_url, ["analyst"], "default")
    admin = _key(service.database_url, ["admin"], "default")
    with service.client(key=alice) as client:
        job = client.post("/v1/jobs", json={"urls": [URL]}).json()
    for key in (analyst, admin):
        with service.client(key=key) as client:
            assert [j["id"] for j in client.get("/v1/jobs").json()["items"]] == [job["id"]]
            assert client.get(f"/v1/jobs/{job['id']}").status_code == 200
            assert client.post("/v1/jobs", json={"urls": [URL]}).status_code == 403
            assert client.post("/v1/tts", json={"text": "hello"}).status_code == 403
    with service.client(key=analyst) as client:
        assert client.get("/v1/admin/events").status_code == 403
    with service.client(key=admin) as client:
        assert client.get("/v1/admin/events").status_code == 200


def test_urls_with_credentials_are_refused(service: Service) -> None:
    with service.client() as client:
        answer = client.post("/v1/jobs", json={"urls": [URL, "https://user:pass@example.com/a.mp4"]})
        assert answer.status_code == 422
        assert answer.json()["error"]["details"]["field"] == "urls[1]"
        presigned = client.post("/v1/jobs", json={"urls": ["https://example.com/a.mp4?X-Amz-Signature=abc"]})
        assert presigned.status_code == 202


def test_create_key_takes_a_tenant(service: Service) -> None:
    """`python -m app create-key --tenant NAME` makes a key of that tenant (default: `default`)."""
    env = {"DATABASE_URL": service.database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "create-key", "--name", "k", "--scopes", "read", "--tenant", "carol"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = done.stdout.strip().splitlines()[-1]
    with service.client() as client:
        client.post("/v1/jobs", json={"urls": [URL]})
    with service.client(key=key) as client:
        assert client.get("/v1/jobs").json()["items"] == []


def test_tts_cache_is_not_shared_between_tenants(service: Service) -> None:
    """A cache hit would tell tenant B that tenant A synthesized this text: each tenant has its own entries."""
    alice = _key(service.database_url, ["tts"], "alice")
    bob = _key(service.database_url, ["tts"], "bob")
    body = {"text": "the merger closes on friday"}
    with service.client(key=alice) as client:
        assert client.post("/v1/tts", json=body).headers["x-cache"] == "miss"
        assert client.post("/v1/tts", json=body).headers["x-cache"] == "hit"
    with service.client(key=bob) as client:
        assert client.post("/v1/tts", json=body).headers["x-cache"] == "miss"
