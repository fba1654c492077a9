"""`serve` and `worker` as a deployment runs them: refusing to start half-configured outside development,
and `serve` with several processes sharing one socket and one /metrics."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.emulator.testing import EmulatorServer
from tests.conftest import create_key, hume_environment
from tests.servers import free_port

DEPLOYMENT = ("DATABASE_URL", "PUBLIC_BASE_URL", "HUME_API_KEY", "HUME_SECRET_KEY", "HUME_BASE_URL", "ENVIRONMENT")


def _environment(**settings: str) -> dict[str, str]:
    """This process's environment without the deployment settings, then `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT and not k.startswith("PROMETHEUS")}
    return {**env, "LOG_LEVEL": "WARNING", **settings}


def _run(command: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    # cwd: a directory with no .env, so only these settings count.
    return subprocess.run(
        [sys.executable, "-m", "app", command], cwd=cwd, env=_environment(**settings), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_production_refuses_to_start_without_the_settings_a_deployment_needs(command: str, tmp_path: Path) -> None:
    done = _run(command, tmp_path, ENVIRONMENT="production")
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ENVIRONMENT is production:")
    for name in ("DATABASE_URL", "PUBLIC_BASE_URL", "HUME_API_KEY", "HUME_BASE_URL"):
        assert name in lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_refusal_names_only_what_is_missing(command: str, tmp_path: Path, database_url: str) -> None:
    """A worker without PUBLIC_BASE_URL would send Hume callbacks for 127.0.0.1: the case of issue 16."""
    done = _run(
        command, tmp_path, ENVIRONMENT="production", DATABASE_URL=database_url, HUME_API_KEY="k",
        HUME_BASE_URL="http://127.0.0.1:9",
    )  # fmt: skip
    assert done.returncode == 2, done
    line = done.stderr.strip()
    assert "PUBLIC_BASE_URL" in line and "DATABASE_URL" not in line and "HUME_API_KEY" not in line, line


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_serve_runs_web_concurrency_processes_that_share_one_metrics(
    tmp_path: Path, database_url: str, emulator: EmulatorServer
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"")  # a previous run's file: serve clears it
    env = _environment(
        ENVIRONMENT="production", DATABASE_URL=database_url, **hume_environment(emulator),
        PUBLIC_BASE_URL=url, PORT=str(port), RUN_WORKER="false", WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc), DASHBOARD_SECRET="one-secret-for-every-process",
    )  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(_children(server.pid)) < 2 or not _ready(url):
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start two processes"
            time.sleep(0.2)
        # Responses go out at once (TCP_NODELAY): a kept-alive connection does not wait 40 ms on delayed ACKs.
        # Without it every request takes 40 ms or more; the median ignores the odd one a busy machine delays.
        with httpx.Client(base_url=url, timeout=5) as client:
            took = []
            for _ in range(60):
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                took.append(time.monotonic() - started)
            assert statistics.median(took) < 0.03, f"requests over one connection took {sorted(took)}"
        # A new connection per request, so the kernel spreads them over both processes.
        for _ in range(40):
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        # Whichever process answers a scrape (each a new connection) counts every process's requests.
        for _ in range(6):
            families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)}
            served = sum(
                s.value for s in families["http_requests"].samples
                if s.name == "http_requests_total" and s.labels.get("route") == "/healthz"
            )  # fmt: skip
            assert served >= 40, served
        writers = {p.stem.rsplit("_", 1)[1] for p in multiproc.glob("counter_*.db")}
        assert len(writers) == 2 and "1" not in writers, writers
        assert {"dead_events", "jobs", "queue_depth"} <= set(families)
        # Signed in once, the dashboard opens on whichever process a new connection reaches.
        key = create_key(database_url, ["read"])
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=url, timeout=10, limits=fresh) as browser:
            assert browser.post("/dashboard/signin", data={"key": key}).status_code == 303
            pages = [browser.get("/dashboard/jobs").status_code for _ in range(30)]
        assert pages == [200] * 30, pages
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert server.returncode == 0


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_with_several_processes_needs_one_dashboard_secret(tmp_path: Path, database_url: str) -> None:
    """Each process would draw its own secret and refuse the others' sessions: serve refuses to start."""
    env = _environment(DATABASE_URL=database_url, PORT=str(free_port()), WEB_CONCURRENCY="2", HUME_API_KEY="k")
    result = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0 and "DASHBOARD_SECRET" in result.stderr, result.stderr
