"""The first five minutes, as a newcomer meets them: `python -m app run` in a subprocess (as `make run`
starts it, on free ports, against a cloned database), the README's block pasted into bash, the `trigger`
commands, and the one-line errors of the command line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class DevService:
    cwd: Path
    url: str
    env: dict[str, str]
    banner: list[str]

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUME_", "PORT", "EMULATOR_PORT", "KEY"))}
    return {**env, "LOG_LEVEL": "WARNING", **extra}


@pytest.fixture
def dev_service(database_url: str, tmp_path: Path) -> Iterator[DevService]:
    """`python -m app run` in a fresh directory (its .data/ there), with the checkout's .venv beside it."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url, PORT=str(port), EMULATOR_PORT=str(free_port()), EMULATOR_CLOUD_PORT=str(free_port())
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops everything" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(90), f"no banner from `python -m app run`: {lines}"
        yield DevService(tmp_path, f"http://127.0.0.1:{port}", env, lines)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def readme_block() -> tuple[str, list[str]]:
    """The shell lines between the first-five-minutes markers, and the output README says they print."""
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- first-five-minutes -->")[1]
    script = section.split("```sh\n")[1].split("```")[0]
    assert "<!-- /first-five-minutes -->" in section
    output = section.split("<!-- /first-five-minutes -->")[1].split("```text\n")[1].split("```")[0]
    return script, output.strip().splitlines()


def shape(line: str) -> str:
    return re.sub(r"\d+", "N", UUID.sub("ID", line))


@pytest.mark.slow
def test_readme_first_five_minutes_runs_as_written(dev_service: DevService) -> None:
    """The README's block, pasted into bash against `make run`'s service, prints what README shows."""
    script, expected = readme_block()
    script = script.replace("http://127.0.0.1:8000", dev_service.url)
    result = subprocess.run(
        ["bash", "-eu", "-c", script], cwd=dev_service.cwd, env=dev_service.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert [shape(line) for line in result.stdout.strip().splitlines()] == [shape(line) for line in expected]
    assert (dev_service.cwd / "hello.wav").read_bytes()[:4] == b"RIFF"


@pytest.mark.slow
def test_banner_status_and_triggers(dev_service: DevService) -> None:
    """The banner names every URL and a ready export line; `status` repeats it; each trigger lands and
    prints its job id last; a job's trouble is visible; a CORS preflight explains what to set."""
    banner = "\n".join(dev_service.banner)
    emulator = f"Emulator URL: http://127.0.0.1:{dev_service.env['EMULATOR_PORT']}"
    for needle in (f"API URL: {dev_service.url}", f"{dev_service.url}/dashboard", f"{dev_service.url}/docs", emulator):
        assert needle in banner
    assert "psql" in banner and "export KEY=hes_" in banner
    status = dev_service.cli("status")
    assert status.returncode == 0 and "is running" in status.stdout and "export KEY=hes_" in status.stdout
    key = dev_service.cli("status", "--key").stdout.strip()

    batch = dev_service.cli("trigger", "batch-job", "--duration", "12")
    assert batch.returncode == 0, batch.stderr
    job_id = batch.stdout.strip().splitlines()[-1]
    assert UUID.fullmatch(job_id) and "is completed" in batch.stderr
    job = httpx.get(f"{dev_service.url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).json()
    assert job["status"] == "completed" and job["last_event"] is None

    failed = dev_service.cli("trigger", "batch-job", "--fail")
    assert failed.returncode == 0 and "is failed" in failed.stderr, failed.stderr
    chat = dev_service.cli("trigger", "evi-chat", "--turns", "2")
    assert chat.returncode == 0 and "is completed: 4 predictions" in chat.stderr, chat.stderr
    tts = dev_service.cli("trigger", "tts", "--output", "hi.wav")
    assert tts.returncode == 0 and (dev_service.cwd / "hi.wav").read_bytes()[:4] == b"RIFF"

    preflight = httpx.options(
        f"{dev_service.url}/api/hume/auth",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 403
    assert "CORS_ALLOW_ORIGINS" in preflight.json()["error"]["message"]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("variable", ["PORT", "EMULATOR_PORT", "EMULATOR_CLOUD_PORT"])
def test_a_taken_port_is_one_line_naming_the_variable(variable: str, database_url: str, tmp_path: Path) -> None:
    """Nothing starts when a port is taken: one line naming the variable to change, exit code 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {name: str(free_port()) for name in ("PORT", "EMULATOR_PORT", "EMULATOR_CLOUD_PORT")}
        ports[variable] = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "app", "run"], cwd=tmp_path, env=base_env(DATABASE_URL=database_url, **ports),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"set {variable} to a free port" in line and ports[variable] in line
    assert not (tmp_path / ".data").exists()


@pytest.mark.slow
def test_cli_errors_are_one_line_with_an_exit_code(database_url: str, tmp_path: Path) -> None:
    """A bad setting (2), an unreachable database within seconds (1), an unknown job (1), a bad id (2)."""
    job = "00000000-0000-0000-0000-000000000000"

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args], cwd=tmp_path, env=base_env(**env), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    bad = run("summary", job, DATABASE_URL=database_url, PORT="8000.9")
    assert bad.returncode == 2 and "PORT must be a whole number" in one_line_error(bad)

    started = time.monotonic()
    down = run("summary", job, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    assert down.returncode == 1 and "cannot reach the database" in one_line_error(down)
    assert time.monotonic() - started < 10

    unknown = run("summary", job, DATABASE_URL=database_url)
    assert unknown.returncode == 1 and f"no job {job}" in one_line_error(unknown)
    not_an_id = run("export", "nope", DATABASE_URL=database_url)
    assert not_an_id.returncode == 2 and "is not a job id" in one_line_error(not_an_id)
    model = run("submit", "https://example.com/a.mp4", "--models", "smell", DATABASE_URL=database_url)
    assert model.returncode == 2 and "smell" in one_line_error(model)
    no_db = run("worker")
    assert no_db.returncode == 2 and "DATABASE_URL is not set" in one_line_error(no_db)
