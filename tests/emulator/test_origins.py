"""The emulator serves Hume's two hosts apart, as Hume does (HUME-V1-FACTS §1): v1 only on the cloud host's
socket, the voice-era APIs only on the other; a call sent to the wrong one gets a 404 there."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from app.emulator.testing import EmulatorServer, free_ports

KEY = {"X-Hume-Api-Key": "any-key"}


def test_each_host_answers_only_its_own_apis(emulator: EmulatorServer) -> None:
    misdirected = httpx.get(f"{emulator.base_url}/v1/expression/run", headers=KEY)
    assert misdirected.status_code == 404 and "not served on this host" in misdirected.json()["message"]
    on_cloud = httpx.post(f"{emulator.cloud_url}/oauth2-cc/token", data={"grant_type": "client_credentials"})
    # api.cloud.hume.ai answers in v1's error shape (type/code), HUME-V1-FACTS §5.
    assert on_cloud.status_code == 404 and on_cloud.json()["code"] == "not_found"
    assert httpx.get(f"{emulator.cloud_url}/v1/expression/run", headers=KEY).status_code != 404
    # Control routes answer on both.
    assert httpx.get(f"{emulator.cloud_url}/_emulator/calls").status_code == 200


def test_one_origin_serves_everything_on_one_socket() -> None:
    with EmulatorServer(one_origin=True) as emu:
        assert emu.cloud_url == emu.base_url
        assert httpx.get(f"{emu.base_url}/v1/expression/run", headers=KEY).status_code == 200


def test_a_process_bound_to_every_address_still_tells_the_hosts_apart() -> None:
    """`python -m app emulator --host 0.0.0.0` (compose): a connection names the address it reached, not
    0.0.0.0, so the hosts are told apart by port."""
    voice, cloud = free_ports(2)
    argv = [sys.executable, "-m", "app", "emulator", "--host", "0.0.0.0", "--port", str(voice),  # noqa: S104
            "--cloud-port", str(cloud), "--log-level", "warning", "--requests-per-minute", "0"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{voice}/_emulator/calls")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the emulator did not start"
                time.sleep(0.05)
        address = socket.gethostbyname(socket.gethostname())
        for host in ("127.0.0.1", address):
            assert httpx.get(f"http://{host}:{voice}/v1/expression/run", headers=KEY).status_code == 404
            assert httpx.get(f"http://{host}:{cloud}/v1/expression/run", headers=KEY).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
