"""The standalone emulator process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_emulator_runs_standalone_and_stops_on_ctrl_c() -> None:
    """`python -m app.emulator --port N` prints its URL, serves Hume paths, and exits 0 on SIGINT."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.emulator",
            "--port",
            str(port),
            "--cloud-port",
            str(_free_port()),
            "--api-key",
            "k",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        deadline = time.monotonic() + 10
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/v0/batch/jobs", headers={"X-Hume-Api-Key": "k"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert resp.status_code == 200 and resp.json() == []
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert code == 0
