"""Issue 22, item 8: failed authentication is throttled per client address (429 with Retry-After, before any
key lookup), in each process's memory; clients that are not failing, and keys that worked, are unaffected.
Item 9: /docs cannot be framed and keeps no pasted key."""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.requests import Request

from app.api.auth_throttle import FailureThrottle, client_of
from tests.conftest import Service, ServiceFactory, create_key

WRONG = "Bearer hes_" + "x" * 43


def test_800_wrong_keys_meet_429_after_the_limit_and_good_keys_pass(service: Service) -> None:
    """The issue's 800 wrong keys in 2 s: past AUTH_FAILURE_LIMIT (30 per minute by default) each one is a
    429 with Retry-After; a key that worked keeps working from the same address throughout, and another
    address is not throttled at all."""
    with service.client() as good:
        assert good.get("/v1/jobs").status_code == 200

    async def attack() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(20)

            async def one(i: int) -> httpx.Response:
                async with gate:
                    return await client.get("/v1/jobs", headers={"Authorization": f"{WRONG[:-4]}{i:04d}"})

            return list(await asyncio.gather(*(one(i) for i in range(800))))

    started = time.monotonic()
    answers = asyncio.run(attack())
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {401, 429}
    # The limit (the first 20 attempts, in flight before any failed, pass on tokens they do not take), plus
    # one for each token regained during the attack (30 a minute); never one a connection per regained token.
    assert 30 <= statuses.count(401) <= 30 + 1 + elapsed * 30 / 60, (statuses.count(401), elapsed)
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.json()["error"]["code"] == "too_many_auth_failures"
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert elapsed < 20, elapsed  # refused before any lookup: no slower than the 401s
    with service.client() as good:
        assert good.get("/v1/jobs").status_code == 200
    # Another address is another client (127.0.0.2 reaches the same loopback server).
    other = httpx.Client(base_url=service.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
    with other:
        assert other.get("/v1/jobs", headers={"Authorization": WRONG}).status_code == 401
        assert other.get("/v1/jobs", headers={"Authorization": f"Bearer {service.key}"}).status_code == 200


def test_the_throttle_lifts_after_retry_after_and_covers_the_sign_in_form(make_service: ServiceFactory) -> None:
    """A small limit (3 per 3 s): the fourth wrong key is a 429; after Retry-After a key may be tried again.
    The dashboard's sign-in form counts against the same address and answers a 429 page."""
    service = make_service(auth_failure_limit=3, auth_failure_window_s=3.0)
    fresh = create_key(service.database_url, ["read"], "never-used-yet")
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for _ in range(3):
            assert client.get("/v1/jobs", headers={"Authorization": WRONG}).status_code == 401
        throttled = client.get("/v1/jobs", headers={"Authorization": WRONG})
        assert throttled.status_code == 429
        wait_s = int(throttled.headers["retry-after"])
        assert wait_s == 1  # one failure regained every window/limit = 1 s
        form = client.post("/dashboard/signin", data={"key": "hes_wrong"})
        assert form.status_code == 429 and form.headers["retry-after"] == "1"
        assert "too many failed" in form.text and "set-cookie" not in form.headers
        # A valid key this process never saw waits too: it cannot be told from a guess without a lookup.
        assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {fresh}"}).status_code == 429
        time.sleep(wait_s + 0.1)
        assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
        assert client.get("/v1/jobs", headers={"Authorization": WRONG}).status_code == 401
        # No key at all is no guess: it costs no lookup and is not counted.
        for _ in range(10):
            assert client.get("/v1/jobs").status_code == 401


def test_the_throttle_counts_per_address_and_ipv6_per_64() -> None:
    throttle = FailureThrottle(limit=2, window_s=60.0)
    now = 1000.0
    for _ in range(2):
        admission = throttle.admit("203.0.113.7", now=now)
        assert admission.wait_s == 0
        throttle.failed("203.0.113.7", held=admission.held, now=now)
    assert throttle.admit("203.0.113.7", now=now).wait_s == 30  # one failure regained every 30 s
    assert throttle.admit("203.0.113.8", now=now) == (0, False)  # another address; one that never failed holds nothing
    regained = throttle.admit("203.0.113.7", now=now + 30)
    assert regained == (0, True)
    throttle.succeeded("good-hash", "203.0.113.7", held=regained.held)
    assert throttle.admit("203.0.113.7", "good-hash", now=now + 30) == (0, False)  # a key that worked passes
    throttle.failed("203.0.113.7", "good-hash", now=now + 30)  # ...until it fails (revoked)
    assert throttle.admit("203.0.113.7", "good-hash", now=now + 30).wait_s > 0

    def address(host: str) -> str:
        return client_of(Request({"type": "http", "client": (host, 5000), "headers": []}))

    assert address("2001:db8:1:2::1") == address("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address("2001:db8:1:3::1") != address("2001:db8:1:2::1")
    assert address("::ffff:192.0.2.1") == "192.0.2.1"
    off = FailureThrottle(limit=0, window_s=60.0)
    for _ in range(100):
        off.failed("198.51.100.1", now=now)
    assert off.admit("198.51.100.1", now=now) == (0, False)


def test_attempts_in_flight_cannot_share_a_regained_token() -> None:
    """20 attempts admitted before any lookup ends, from an address out of tokens but for one regained: one
    goes ahead (it takes the token), the others wait. Its key worked, so the token is back for the next."""
    throttle = FailureThrottle(limit=2, window_s=60.0)
    now, client = 1000.0, "203.0.113.9"
    for _ in range(2):
        admission = throttle.admit(client, now=now)
        throttle.failed(client, held=admission.held, now=now)
    admissions = [throttle.admit(client, now=now + 30) for _ in range(20)]
    [admitted] = [a for a in admissions if a.wait_s == 0]
    assert admitted.held and all(a.wait_s == 30 for a in admissions if a is not admitted)
    throttle.succeeded("key-hash", client, held=admitted.held)
    assert throttle.admit(client, now=now + 30) == (0, True)


def test_docs_cannot_be_framed_and_keep_no_key(service: Service) -> None:
    page = httpx.get(f"{service.url}/docs", timeout=30)
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    init = httpx.get(f"{service.url}/docs/static/docs-init.js", timeout=30).text
    assert "persistAuthorization: false" in init and "persistAuthorization: true" not in init
