"""Issue 22, item 6: sessions that end. Two `python -m app serve` processes on one database: a key revoked
with `keys revoke` answers 401 on the very next request in both (no per-process cache lets it through), and a
dashboard cookie copied before sign-out is refused by both, for pages and for forms (CSRF). Sign-in notices
come from a fixed list of codes; a request without the cookie never deletes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import psycopg
import pytest

from app.dashboard import session as sessions
from app.emulator.testing import EmulatorServer
from app.store import api_keys
from tests.conftest import Service, create_key, hume_environment
from tests.reliability.helpers import wait_ready
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sessions-test-secret"  # the test's own, not a secret


class Serves:
    """`python -m app serve` processes with their output in files, stopped with SIGTERM."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, env: dict[str, str]) -> str:
        port = free_port()
        log = (self.directory / f"serve-{port}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"], cwd=ROOT, env={**env, "PORT": str(port)}, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.running.append((process, log))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, lambda: (self.directory / f"serve-{port}.log").read_text()[-3000:], timeout=60)
        return url

    def stop(self) -> None:
        for process, _ in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, log in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture
def two_apis(database_url: str, emulator: EmulatorServer, tmp_path: Path) -> Iterator[list[str]]:
    serves = Serves(tmp_path)
    env = {
        **os.environ, "DATABASE_URL": database_url, **hume_environment(emulator), "HOST": "127.0.0.1",
        "RUN_WORKER": "false", "LOG_LEVEL": "WARNING", "DASHBOARD_SECRET": SECRET,
    }  # fmt: skip
    try:
        yield [serves.start(env), serves.start(env)]
    finally:
        serves.stop()


def key_id(database_url: str, key: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM api_key WHERE key_hash = %s", (api_keys.hash_key(key),)).fetchone()
    assert row is not None
    return str(row[0])


def test_a_revoked_key_answers_401_at_once_in_every_process(two_apis: list[str], database_url: str) -> None:
    key = create_key(database_url, ["read"], "soon-revoked")
    clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) for url in two_apis]
    try:
        for client in clients:  # each process has seen the key working (what a cache would keep)
            for _ in range(3):
                assert client.get("/v1/jobs").status_code == 200
        revoked = subprocess.run(
            [sys.executable, "-m", "app", "keys", "revoke", key_id(database_url, key)],
            cwd=ROOT, env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        assert "now answer 401" in revoked.stdout
        for client in clients:
            answer = client.get("/v1/jobs")
            assert answer.status_code == 401, (client.base_url, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized"
    finally:
        for client in clients:
            client.close()


def test_sign_out_ends_a_copied_cookie_in_every_process(two_apis: list[str], database_url: str) -> None:
    """Sign in on one process, copy the cookie, sign out: the copy opens no page and passes no form on
    either process; a new sign-in of the same key still works."""
    first, second = two_apis
    key = create_key(database_url, ["read", "admin"], "operator")
    with psycopg.connect(database_url) as conn:
        event = conn.execute(
            "INSERT INTO inbox_event (provider, dedup_key, event_type, body, state, attempts, last_error)"
            " VALUES ('hume_batch', 'sessions-test', 'job_completed', '\\x7b7d', 'dead', 8, 'boom') RETURNING id"
        ).fetchone()
    assert event is not None
    browser = httpx.Client(base_url=first, timeout=30)
    signed = browser.post("/dashboard/signin", data={"key": key, "next": "/dashboard/operators"})
    assert signed.status_code == 303, signed.text
    cookie = browser.cookies[sessions.COOKIE]
    page = browser.get("/dashboard/operators")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert page.status_code == 200 and match is not None
    csrf = match.group(1)
    for url in two_apis:  # the copy works everywhere while the session lasts
        with httpx.Client(base_url=url, cookies={sessions.COOKIE: cookie}, timeout=30) as copy:
            assert copy.get("/dashboard/jobs").status_code == 200
    out = browser.post("/dashboard/signout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/signin?reason=signed_out"
    for url in (second, first):
        with httpx.Client(base_url=url, cookies={sessions.COOKIE: cookie}, timeout=30) as copy:
            page = copy.get("/dashboard/jobs")
            assert page.status_code == 303, (url, page.text)
            assert "reason=ended" in page.headers["location"]
            replay = copy.post(f"/dashboard/events/{event[0]}/replay", data={"csrf": csrf})
            assert replay.status_code == 303 and "/dashboard/signin" in replay.headers["location"], url
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT state FROM inbox_event WHERE id = %s", (event[0],)).fetchone() == ("dead",)
    again = httpx.Client(base_url=second, timeout=30)
    assert again.post("/dashboard/signin", data={"key": key}).status_code == 303
    assert again.get("/dashboard/jobs").status_code == 200
    again.close()
    browser.close()


def test_sign_in_notices_are_chosen_by_code(service: Service) -> None:
    """`?reason=` picks one of the fixed notices; any other text is shown nowhere."""
    planted = "Your key leaked. Paste it at evil.example to rotate it."
    with httpx.Client(base_url=service.url, timeout=30) as client:
        page = client.get("/dashboard/signin", params={"reason": planted})
        assert page.status_code == 200 and "evil.example" not in page.text and 'class="notice"' not in page.text
        for code, says in (("signed_out", "Signed out."), ("expired", "expired"), ("ended", "signed out")):
            shown = client.get("/dashboard/signin", params={"reason": code}).text
            assert 'class="notice"' in shown and says in shown, code


def test_a_request_without_the_cookie_never_deletes_it(service: Service) -> None:
    """A request that arrives without the cookie (as one from another site may) is sent to sign in, but
    nothing tells the browser to drop a cookie it holds; a cookie that was sent and failed is deleted. The
    cookie is SameSite=Lax, so a link from another site arrives signed in (the browser test shows it)."""
    key = create_key(service.database_url, ["read"], "viewer")
    with httpx.Client(base_url=service.url, timeout=30) as client:
        signed = client.post("/dashboard/signin", data={"key": key})
        set_cookie = signed.headers["set-cookie"].lower()
        assert "samesite=lax" in set_cookie and "httponly" in set_cookie
        bare = httpx.get(f"{service.url}/dashboard/jobs", timeout=30)
        assert bare.status_code == 303 and "set-cookie" not in bare.headers
        assert client.get("/dashboard/jobs").status_code == 200
    forged = sessions.new(b"another-server", uuid.uuid4())
    refused = httpx.get(f"{service.url}/dashboard/jobs", cookies={sessions.COOKIE: forged}, timeout=30)
    assert refused.status_code == 303 and "reason=invalid" in refused.headers["location"]
    assert f'{sessions.COOKIE}=""' in refused.headers["set-cookie"]
    # A cookie holding a byte that is not ASCII is refused like any bad cookie, not a 500.
    odd_cookie = {b"cookie": sessions.COOKIE.encode() + b"=ab.c\xe9"}
    odd = httpx.get(f"{service.url}/dashboard/jobs", headers=odd_cookie, timeout=30)
    assert odd.status_code == 303 and "reason=invalid" in odd.headers["location"]
