"""``POST /oauth2-cc/token``: client-credentials access tokens."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.emulator.testing import EmulatorServer


def test_token_issued_for_basic_auth_client_credentials(make_emulator: Callable[..., EmulatorServer]) -> None:
    """Basic base64(key:secret) + grant_type=client_credentials gives a bearer token for 1800 s."""
    emu = make_emulator(api_key="key", secret_key="secret")
    url = f"{emu.base_url}/oauth2-cc/token"
    resp = httpx.post(url, data={"grant_type": "client_credentials"}, auth=("key", "secret"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] == 1800 and len(body["access_token"]) > 20
    assert httpx.post(url, data={"grant_type": "client_credentials"}, auth=("key", "wrong")).status_code == 401
    assert httpx.post(url, data={"grant_type": "client_credentials"}, auth=("other", "secret")).status_code == 401
    assert httpx.post(url, data={"grant_type": "client_credentials"}).status_code == 401
    assert httpx.post(url, data={"grant_type": "password"}, auth=("key", "secret")).status_code == 400
    assert emu.calls()["POST /oauth2-cc/token"] == 5
