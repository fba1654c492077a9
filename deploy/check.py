"""`make deploy-check`: the image and the compose topology, run for real on a Docker engine.

Builds the image, starts `compose --profile emulator` (Postgres, migrate, the api with several processes, two
workers, the emulator as Hume's two hosts), waits for readiness, creates a key in the api container, submits a
job that completes through the emulator's callback, signs in to the dashboard and loads pages served by the
api's processes, checks the Prometheus alert rules with promtool, and tears everything down, stopping a
dockerd it started. Where no container registry answers, the base images are local stand-ins built by
`docker-standins` (DOCKER_STANDINS, default ../shared/tools/docker-standins): Debian's packages under the
official names, never pushed. Without a Docker engine to be had it says so and exits 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "hes-deploy-check"
BASE_IMAGES = ("python:3.11-slim-bookworm", "postgres:16")
T = TypeVar("T")


def say(message: str) -> None:
    sys.stdout.write(f"deploy-check: {message}\n")
    sys.stdout.flush()


def run(*argv: str, check: bool = True, capture: bool = False, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, cwd=ROOT, check=False, text=True, env=env,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise SystemExit(f"deploy-check: `{' '.join(argv)}` failed ({result.returncode}):\n{result.stdout or ''}")
    return result.stdout or ""


def docker_answers() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, check=False
    ).returncode == 0  # fmt: skip


def image_present(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False).returncode == 0


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"deploy-check: gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(1)


def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) where installed, else Debian's docker-compose 1.29 with --compatibility,
    under which `deploy.replicas` starts the two workers compose.yaml asks for."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose", "--compatibility"]
    raise SystemExit("deploy-check: neither `docker compose` nor docker-compose is installed")


def engine() -> bool:
    """A Docker engine with both base images; True if this run started dockerd (so it stops it)."""
    answered = docker_answers()
    if answered and all(image_present(name) for name in BASE_IMAGES):
        return False
    standins = Path(os.environ.get("DOCKER_STANDINS", ROOT.parent / "shared" / "tools" / "docker-standins"))
    if not standins.exists() or os.geteuid() != 0:
        if answered:
            return False  # the registry may serve the base images
        say(f"skipped: no Docker engine answers, and {standins} (root only) is not here to install one")
        raise SystemExit(0)
    say(f"running {standins} (Debian's docker.io and local stand-ins of {', '.join(BASE_IMAGES)})")
    run("bash", str(standins))
    return not answered


def promtool() -> str | None:
    if shutil.which("promtool") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing Debian's prometheus package for promtool")
        subprocess.run(["apt-get", "install", "-y", "-qq", "prometheus"], capture_output=True, check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    return shutil.which("promtool")


def check(compose: list[str], port: int) -> None:
    api = f"http://127.0.0.1:{port}"

    def ready() -> bool | None:
        try:
            return True if httpx.get(f"{api}/readyz", timeout=3).status_code == 200 else None
        except httpx.HTTPError:
            return None

    wait_for("the api's /readyz", ready, 180)
    say("api ready")
    services = run(*compose, "ps", "--services", "--filter", "status=running", capture=True).split()
    workers = run(*compose, "ps", "-q", "worker", capture=True).split()
    say(f"running: {', '.join(sorted(services))}; {len(workers)} worker containers")
    assert len(workers) == 2, f"compose.yaml asks for 2 workers, {len(workers)} run"
    made = run(*compose, "exec", "-T", "api", "python", "-m", "app", "create-key", "--name", "deploy-check",
               "--scopes", "submit,read", capture=True)  # fmt: skip
    match = re.search(r"hes_[A-Za-z0-9_\-]+", made)
    assert match, f"create-key printed no key: {made}"
    key = match.group(0)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        body = {"urls": ["https://example.com/interview.mp4#duration=20"], "backend": "batch"}
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]

        def ended() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in ("completed", "failed", "rejected") else None

        job = wait_for(f"job {job_id}", ended, 120)
        assert job["status"] == "completed" and job["num_predictions"] > 0, job
        say(f"job {job_id} completed through the emulator's callback: {job['num_predictions']} predictions")
    # No keep-alive: each request opens a connection of its own, which the kernel hands to any of the api's
    # processes (one kept-alive connection would stay with one process and prove nothing).
    with httpx.Client(base_url=api, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as browser:
        signin = browser.get("/dashboard/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        form = {"key": key, **({"csrf": csrf.group(1)} if csrf else {})}
        signed = browser.post("/dashboard/signin", data=form)
        assert signed.status_code in (200, 303), signed.status_code
        # Each request may land on any of the api's processes: every one must honour the session.
        for _ in range(24):
            page = browser.get("/dashboard/jobs")
            assert page.status_code == 200 and job_id in page.text, f"dashboard page: {page.status_code}"
        say("dashboard: signed in once, 24 pages loaded across the api's processes")
    tool = promtool()
    if tool is None:
        say("promtool unavailable: alert rules not checked")
    else:
        run(tool, "check", "rules", "deploy/prometheus/alerts.yml", capture=True)
        say("promtool: deploy/prometheus/alerts.yml is valid")


def main() -> int:
    started_dockerd = engine()
    images = ", ".join(f"{name} ({'stand-in' if is_standin(name) else 'registry'})" for name in BASE_IMAGES)
    say(f"base images: {images}")
    port = int(os.environ.get("DEPLOY_CHECK_PORT", "18000"))
    compose = [*compose_command(), "-p", PROJECT, "--env-file", "deploy/emulator.env", "--profile", "emulator"]
    env = {**os.environ, "API_PORT": str(port)}
    try:
        say("building the image and starting compose --profile emulator")
        run(*compose, "up", "-d", "--build", env=env)
        check(compose, port)
        say("all checks passed")
        return 0
    finally:
        run(*compose, "down", "-v", "--remove-orphans", check=False, capture=True, env=env)
        say("compose stack removed")
        if started_dockerd:
            subprocess.run(["pkill", "-x", "dockerd"], check=False)
            say("stopped the dockerd this check started")


def is_standin(name: str) -> bool:
    labels = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", name], capture_output=True, text=True,
        check=False,
    ).stdout  # fmt: skip
    return "STAND-IN" in labels


if __name__ == "__main__":
    sys.exit(main())
