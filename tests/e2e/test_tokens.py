"""GET /api/hume/auth over real sockets against the emulator's OAuth2 endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorServer
from tests.conftest import BUILT_IN_EMULATOR, EMULATOR_KEY, Service, ServiceFactory, create_key
from tests.servers import free_port

TOKEN_CALL = "POST /oauth2-cc/token"


def token_calls(emulator: EmulatorServer) -> int:
    return emulator.calls().get(TOKEN_CALL, 0)


@pytest.fixture
def short_lived_emulator() -> Iterator[EmulatorServer]:
    """An emulator whose tokens live 2 s and which checks the secret key."""
    config = EmulatorConfig(api_key=EMULATOR_KEY, secret_key="right-secret", token_lifetime_s=2)
    with EmulatorServer(config) as emu:
        yield emu


def test_token_is_served_cached_and_accepted_by_hume(service: Service, emulator: EmulatorServer) -> None:
    """The frontend gets a token Hume accepts, with its remaining lifetime; asking again reuses it."""
    with service.client() as client:
        first = client.get("/api/hume/auth")
        assert first.status_code == 200, first.text
        body = first.json()
        assert set(body) == {"accessToken", "expiresIn"}
        assert 1700 <= body["expiresIn"] <= 1800
        assert first.headers["cache-control"] == "no-store"
        again = client.get("/api/hume/auth").json()
    assert again["accessToken"] == body["accessToken"]
    assert again["expiresIn"] <= body["expiresIn"]
    assert token_calls(emulator) == 1
    # The token is real: Hume's TTS accepts it as a bearer token.
    tts = httpx.post(
        f"{emulator.base_url}/v0/tts",
        json={"utterances": [{"text": "hi"}]},
        headers={"Authorization": f"Bearer {body['accessToken']}"},
    )
    assert tts.status_code == 200, tts.text


def test_cold_cache_200_concurrent_requests_make_one_upstream_call(service: Service, emulator: EmulatorServer) -> None:
    """200 simultaneous requests on a cold cache share one call to Hume and all get the same token."""
    emulator.set_faults(path="/oauth2-cc/token", delay_s=0.3)  # a realistic 300 ms keeps them overlapping

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        headers = {"Authorization": f"Bearer {service.key}"}
        async with httpx.AsyncClient(base_url=service.url, headers=headers, limits=limits, timeout=30) as client:
            return await asyncio.gather(*(client.get("/api/hume/auth") for _ in range(200)))

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 200
    assert len({r.json()["accessToken"] for r in responses}) == 1
    assert token_calls(emulator) == 1


def test_token_endpoint_needs_the_token_scope(service: Service) -> None:
    """Minting tokens costs money: no key is 401, a key without the token scope is 403."""
    assert httpx.get(f"{service.url}/api/hume/auth").status_code == 401
    reader = create_key(service.database_url, ["read", "tts"])
    with service.client(reader) as client:
        response = client.get("/api/hume/auth")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    minter = create_key(service.database_url, ["token"])
    with service.client(minter) as client:
        assert client.get("/api/hume/auth").status_code == 200


def test_hume_failure_is_503_without_hume_body(service: Service, emulator: EmulatorServer) -> None:
    """When Hume fails with a 5xx, the caller gets our 503 JSON error with Retry-After (as from every route),
    never Hume's body; the next request recovers."""
    emulator.set_faults(path="/oauth2-cc/token", status=500, times=1, body={"message": "upstream-internal-detail"})
    with service.client() as client:
        failed = client.get("/api/hume/auth")
        assert failed.status_code == 503
        assert int(failed.headers["retry-after"]) >= 1
        error = failed.json()["error"]
        assert error["code"] == "hume_unavailable"
        assert "500" in error["message"]
        assert "upstream-internal-detail" not in failed.text
        recovered = client.get("/api/hume/auth")
    assert recovered.status_code == 200
    assert token_calls(emulator) == 2  # failures are not cached


def test_wrong_secret_is_502_and_never_logged(
    make_service: ServiceFactory, short_lived_emulator: EmulatorServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """Credentials Hume refuses give a 502 that names the settings to check; the secret appears nowhere."""
    secret = "wrong-secret-value-1234"
    service = make_service(hume_voice_url=short_lived_emulator.base_url, hume_secret_key=secret, log_level="DEBUG")
    with service.client() as client:
        response = client.get("/api/hume/auth")
    assert response.status_code == 502
    assert "HUME_SECRET_KEY" in response.json()["error"]["message"]
    assert secret not in response.text
    out, err = capfd.readouterr()
    assert secret not in out + err
    assert secret not in repr(service.server.settings)


def test_token_is_refreshed_before_it_expires(
    make_service: ServiceFactory, short_lived_emulator: EmulatorServer
) -> None:
    """Near expiry the current token is still served while the next one is fetched in the background;
    no caller ever gets a token past its lifetime."""
    service = make_service(hume_voice_url=short_lived_emulator.base_url, hume_secret_key="right-secret")
    with service.client() as client:
        first = client.get("/api/hume/auth").json()
        assert first["expiresIn"] <= 2
        time.sleep(1.3)  # inside the refresh margin (half of a 2 s lifetime), still valid
        during = client.get("/api/hume/auth").json()
        assert during["accessToken"] == first["accessToken"]
        deadline = time.monotonic() + 5
        while True:
            latest = client.get("/api/hume/auth").json()
            if latest["accessToken"] != first["accessToken"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert latest["accessToken"] != first["accessToken"]
    assert short_lived_emulator.calls().get(TOKEN_CALL, 0) == 2


def test_no_secret_key_is_a_clear_503(make_service: ServiceFactory) -> None:
    """Without HUME_SECRET_KEY the endpoint says what is missing instead of failing obscurely."""
    service = make_service(hume_secret_key=None)
    with service.client() as client:
        response = client.get("/api/hume/auth")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"


def test_cors_allows_only_configured_origins(make_service: ServiceFactory) -> None:
    """A browser frontend on an allowed origin passes the preflight; other origins get no CORS grant."""
    service = make_service(cors_allow_origins=("https://app.example",))
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    allowed = httpx.options(f"{service.url}/api/hume/auth", headers={"Origin": "https://app.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    denied = httpx.options(f"{service.url}/api/hume/auth", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in denied.headers
    with service.client() as client:
        real = client.get("/api/hume/auth", headers={"Origin": "https://app.example"})
    assert real.status_code == 200
    assert real.headers["access-control-allow-origin"] == "https://app.example"


def test_built_in_emulator_mints_tokens_out_of_the_box(make_service: ServiceFactory) -> None:
    """`make run` with no Hume credentials: the built-in emulator's fixed secret makes tokens work, and the
    token is accepted by that emulator's TTS."""
    service = make_service(**BUILT_IN_EMULATOR, emulator_port=free_port(), emulator_cloud_port=free_port())
    with service.client() as client:
        response = client.get("/api/hume/auth")
        assert response.status_code == 200, response.text
        tts = client.post("/v1/tts", json={"text": "Out of the box."})
    assert tts.status_code == 200, tts.text
    emulator_url = f"http://127.0.0.1:{service.server.settings.emulator_port}"
    accepted = httpx.post(
        f"{emulator_url}/v0/tts/file",
        json={"utterances": [{"text": "hi"}]},
        headers={"Authorization": f"Bearer {response.json()['accessToken']}"},
    )
    assert accepted.status_code == 200


@pytest.fixture
def four_second_emulator() -> Iterator[EmulatorServer]:
    """Tokens that live 4 s: a refresh margin of 2 s, served until 0.4 s are left (the hard margin)."""
    config = EmulatorConfig(api_key=EMULATOR_KEY, secret_key="right-secret", token_lifetime_s=4)
    with EmulatorServer(config) as emu:
        yield emu


def test_refresh_failure_keeps_serving_the_valid_token(
    make_service: ServiceFactory, four_second_emulator: EmulatorServer
) -> None:
    """If Hume fails while the cached token is still good, callers keep getting it (one failed refresh,
    not one per request); once it is about to lapse, callers get a 503 (retry later) instead of a dying token."""
    emulator = four_second_emulator
    service = make_service(hume_voice_url=emulator.base_url, hume_secret_key="right-secret")
    with service.client() as client:
        issued = time.monotonic()
        first = client.get("/api/hume/auth").json()
        emulator.set_faults(path="/oauth2-cc/token", status=503)
        time.sleep(2.2)  # inside the refresh margin: 1.8 s of its 4 s left
        during = [client.get("/api/hume/auth") for _ in range(10)]
        # The window runs to 3.6 s (0.4 s left): a second of room for ten requests on a busy machine.
        assert time.monotonic() - issued < 3.5, "too slow to observe the margin"
        assert [r.status_code for r in during] == [200] * 10
        assert {r.json()["accessToken"] for r in during} == {first["accessToken"]}
        assert emulator.calls()[TOKEN_CALL] == 2  # the first fetch and one background refresh
        time.sleep(max(0.0, 3.8 - (time.monotonic() - issued)))
        late = client.get("/api/hume/auth")
    assert late.status_code == 503
    assert late.json()["error"]["code"] == "hume_unavailable"
