"""The dashboard's doors over real HTTP: sign-in, cookies that are wrong, expired, tampered or revoked,
unknown jobs, CSRF on forms that change things, and bad filters; each a clear page, never a 500."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import psycopg
import pytest

from app.dashboard import session as sessions
from app.store import api_keys
from tests.conftest import Service, ServiceFactory, create_key

SECRET = "dashboard-test-secret"  # the test's own, not a secret


@pytest.fixture
def dash(make_service: ServiceFactory) -> Service:
    return make_service(dashboard_secret=SECRET)


def signed_in(service: Service, key: str) -> httpx.Client:
    client = httpx.Client(base_url=service.url, timeout=30)
    response = client.post("/dashboard/signin", data={"key": key, "next": "/dashboard/jobs"})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/jobs", response.text
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "Max-Age=" in cookie
    assert key not in cookie  # the cookie names the key's id, never the key
    return client


def key_id(database_url: str, key: str) -> uuid.UUID:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM api_key WHERE key_hash = %s", (api_keys.hash_key(key),)).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_sign_in_refuses_wrong_keys_and_keys_without_read(dash: Service) -> None:
    with httpx.Client(base_url=dash.url, timeout=30) as client:
        wrong = client.post("/dashboard/signin", data={"key": "hes_wrong"})
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
        assert "set-cookie" not in wrong.headers
        empty = client.post("/dashboard/signin", data={"key": ""})
        assert empty.status_code == 422 and "Enter an API key" in empty.text
        tts_only = client.post("/dashboard/signin", data={"key": create_key(dash.database_url, ["tts"])})
        assert tts_only.status_code == 403 and "read scope" in tts_only.text
        # An open redirect through `next` is refused: the target stays inside the dashboard.
        key = create_key(dash.database_url, ["read"])
        elsewhere = client.post("/dashboard/signin", data={"key": key, "next": "//evil.example/x"})
        assert elsewhere.headers["location"] == "/dashboard/jobs"


def test_bad_cookies_send_the_viewer_to_sign_in_saying_why(dash: Service) -> None:
    key = create_key(dash.database_url, ["read"])
    kid = key_id(dash.database_url, key)
    expired = sessions.new(SECRET.encode(), kid, now=time.time() - sessions.SESSION_TTL_S - 5)
    good = sessions.new(SECRET.encode(), kid)
    tampered = good[:-2] + ("00" if not good.endswith("00") else "11")
    forged = sessions.new(b"another-server", kid)
    cases = {
        None: "Please sign in",
        "garbage": "not valid",
        tampered: "not valid",
        forged: "not valid",
        expired: "expired",
    }
    for cookie, says in cases.items():
        cookies = {sessions.COOKIE: cookie} if cookie else {}
        with httpx.Client(base_url=dash.url, cookies=cookies, timeout=30) as client:
            response = client.get("/dashboard/jobs")
            assert response.status_code == 303, cookie
            assert response.headers["location"].startswith("/dashboard/signin?next=%2Fdashboard%2Fjobs")
            page = client.get(response.headers["location"])
            assert page.status_code == 200 and says in page.text, (cookie, page.text)
    with httpx.Client(base_url=dash.url, cookies={sessions.COOKIE: good}, timeout=30) as client:
        assert client.get("/dashboard/jobs").status_code == 200
        poll = client.get("/dashboard/jobs/status.json", params={"id": str(uuid.uuid4())})
        assert poll.status_code == 200 and poll.json()["jobs"] == {}
    with httpx.Client(base_url=dash.url, cookies={sessions.COOKIE: expired}, timeout=30) as client:
        assert client.get("/dashboard/jobs/status.json").status_code == 401  # scripts get a status, not a redirect


def test_revoking_the_key_ends_its_sessions(dash: Service) -> None:
    key = create_key(dash.database_url, ["read"])
    client = signed_in(dash, key)
    assert client.get("/dashboard/jobs").status_code == 200
    with psycopg.connect(dash.database_url) as conn:
        conn.execute("UPDATE api_key SET revoked_at = now() WHERE key_hash = %s", (api_keys.hash_key(key),))
    response = client.get("/dashboard/jobs")
    assert response.status_code == 303
    assert "revoked" in client.get(response.headers["location"]).text
    client.close()


def test_unknown_jobs_and_bad_filters_are_clear_pages(dash: Service) -> None:
    client = signed_in(dash, create_key(dash.database_url, ["read"]))
    missing = uuid.uuid4()
    for path, status, says in [
        (f"/dashboard/jobs/{missing}", 404, f"There is no job {missing}"),
        ("/dashboard/jobs/not-a-job", 404, "not even a job id"),
        (f"/dashboard/jobs/{missing}/timeline?model=face", 404, "There is no job"),
        ("/dashboard/jobs?status=bogus", 422, "status: must be one of"),
        ("/dashboard/jobs?metadata=%7Bnope", 422, "metadata: must be a JSON object"),
        ("/dashboard/jobs?created_after=yesterday", 422, "created_after"),
        ("/dashboard/jobs?cursor=%%%", 422, "cursor"),
        ("/dashboard/top?model=face&emotion=Nope", 422, "is not an emotion of the face model"),
        ("/dashboard/top?model=nope&emotion=Joy", 422, "model: must be one of"),
        ("/dashboard/operators", 403, "admin scope"),
    ]:
        response = client.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert says in response.text and "Traceback" not in response.text, path
    client.close()


def test_another_tenants_job_is_a_no_job_page(dash: Service) -> None:
    """A viewer of tenant bob gets the same 404 page for alice's job as for a job that does not exist (its
    page, its timeline fragment); alice's job is in none of bob's lists or status polls. Alice, and an
    analyst (every tenant), see it."""
    alice = create_key(dash.database_url, ["submit", "read"], "alice", tenant="alice")
    with dash.client(key=alice) as api:
        made = api.post("/v1/jobs", json={"urls": ["https://example.com/clip.mp4#duration=4"]})
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    bob = signed_in(dash, create_key(dash.database_url, ["read"], "bob", tenant="bob"))
    for path in (f"/dashboard/jobs/{job_id}", f"/dashboard/jobs/{job_id}/timeline?model=face"):
        page = bob.get(path)
        assert page.status_code == 404, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert f"There is no job {job_id}" in page.text and "Traceback" not in page.text
    assert job_id not in bob.get("/dashboard/jobs").text
    assert bob.get("/dashboard/jobs/status.json", params={"id": job_id}).json()["jobs"] == {}
    bob.close()
    for key in (alice, create_key(dash.database_url, ["analyst"], "ops")):
        viewer = signed_in(dash, key)
        assert viewer.get(f"/dashboard/jobs/{job_id}").status_code == 200
        assert job_id[:8] in viewer.get("/dashboard/jobs").text
        assert job_id in viewer.get("/dashboard/jobs/status.json", params={"id": job_id}).json()["jobs"]
        viewer.close()


def insert_dead_event(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO inbox_event (provider, dedup_key, event_type, body, state, attempts, last_error)"
            " VALUES ('hume_batch', 'dash-test', 'job_completed', '\\x7b7d', 'dead', 8, 'boom') RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_operators_replay_needs_the_csrf_token_of_the_session(dash: Service) -> None:
    event_id = insert_dead_event(dash.database_url)
    client = signed_in(dash, create_key(dash.database_url, ["read", "admin"]))
    page = client.get("/dashboard/operators")
    assert page.status_code == 200 and f"Replay event {event_id}" in page.text and "boom" in page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    refused = client.post(f"/dashboard/events/{event_id}/replay", data={"csrf": "forged"})
    assert refused.status_code == 403 and "security token" in refused.text
    unknown = client.post("/dashboard/events/999999/replay", data={"csrf": match.group(1)})
    assert unknown.status_code == 404
    done = client.post(f"/dashboard/events/{event_id}/replay", data={"csrf": match.group(1)})
    assert done.status_code == 303 and done.headers["location"] == f"/dashboard/operators?replayed={event_id}"
    with psycopg.connect(dash.database_url) as conn:
        tasks = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE args ->> 'event_id' = %s", (str(event_id),)
        ).fetchone()
    assert tasks == (1,)  # the replay queued the event's task, as POST /v1/admin/events/{id}/replay does
    assert f"Event {event_id} was put back" in client.get(done.headers["location"]).text
    # Sign-out needs the token too, then the cookie is gone.
    assert client.post("/dashboard/signout", data={}).status_code == 403
    out = client.post("/dashboard/signout", data={"csrf": match.group(1)})
    assert out.status_code == 303 and client.get("/dashboard/jobs").status_code == 303
    client.close()


def test_demo_job_starts_from_the_page(dash: Service) -> None:
    client = signed_in(dash, dash.key)
    page = client.get("/dashboard/jobs")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None and "Start a demo job" in page.text
    started = client.post("/dashboard/demo", data={"csrf": match.group(1)})
    assert started.status_code == 303 and started.headers["location"].startswith("/dashboard/jobs/")
    assert client.get(started.headers["location"]).status_code == 200
    client.close()
