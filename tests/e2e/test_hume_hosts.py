"""Which host each Hume call goes to with real settings, proven without the network: in a network and mount
namespace of the test's own, /etc/hosts sends api.cloud.hume.ai and api.hume.ai to two local stand-ins that
serve only their own host's APIs over TLS (a call sent to the wrong host gets the 404 Hume would answer, and
an unknown name does not resolve at all), and the service's clients, built from a key and no URL, call them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest

from app.config import HUME_CLOUD_URL, HUME_VOICE_URL

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def unix_socket_url(database_url: str) -> str | None:
    """The same database over the server's Unix socket (a new network namespace has no route to its TCP port)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW unix_socket_directories").fetchone()
    directory = (row[0] if row else "").split(",")[0].strip()
    port = urlsplit(database_url).port or 5432
    if not directory or not Path(directory, f".s.PGSQL.{port}").exists():
        return None
    parts = urlsplit(database_url)
    return f"postgresql://{parts.username or 'postgres'}@/{parts.path.lstrip('/')}?host={directory}&port={port}"


def namespaces_available() -> str | None:
    """Why the test cannot make its namespaces here, or None."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs root with unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True)
    return None if probe.returncode == 0 else f"unshare refused: {probe.stderr.decode().strip()}"


def test_real_settings_send_v1_to_the_cloud_host_and_tokens_to_the_voice_host(
    database_url: str, tmp_path: Path
) -> None:
    why = namespaces_available()
    if why:
        pytest.skip(why)
    socket_url = unix_socket_url(database_url)
    if socket_url is None:
        pytest.skip("the test Postgres has no Unix socket on this machine")
    cloud, voice = urlsplit(HUME_CLOUD_URL).hostname, urlsplit(HUME_VOICE_URL).hostname
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={cloud}",
         "-addext", f"subjectAltName=DNS:{cloud},DNS:{voice}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.2 {cloud}\n127.0.0.3 {voice}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUME_", "SSL_CERT"))}
    env.update(
        DATABASE_URL=socket_url, HUME_API_KEY="a-real-looking-key", HUME_SECRET_KEY="a-real-looking-secret",
        SSL_CERT_FILE=str(cert), LOG_LEVEL="WARNING",
    )  # fmt: skip
    script = (
        f"ip link set lo up && mount --bind {hosts} /etc/hosts && "
        f"exec {sys.executable} -m tests.hume_hosts_stand_in {cert} {key}"
    )
    result = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert report["cloud_url"] == "https://api.cloud.hume.ai" and report["voice_url"] == "https://api.hume.ai"
    # Each stand-in answers only its own host's paths: these calls succeeded, so each reached the right one.
    assert report["v1_audio_run"] and report["token"] is True
    assert report["calls"] == {"POST /v1/expression/audio/file": 1, "POST /oauth2-cc/token": 1}
