"""The Dockerfile's essentials, checked without a container engine; requirements.lock against pyproject."""

from __future__ import annotations

import json
import re
import tomllib

from tests.deploy.artifacts import ROOT, dockerfile_stages


def _instructions(stage: list[str], keyword: str) -> list[str]:
    return [line[len(keyword) :].strip() for line in stage if line.upper().startswith(keyword + " ")]


def test_multi_stage_with_a_slim_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        assert re.match(r"FROM python:3\.11-slim", stage[0]), stage[0]
    final = stages[-1]
    assert any("--from=" in line for line in _instructions(final, "COPY")), "the final stage must copy the built venv"


def test_dependencies_come_from_the_lock_file_with_hashes_and_no_dev_extras() -> None:
    text = "\n".join(line for stage in dockerfile_stages() for line in stage)
    assert "--require-hashes" in text and "requirements.lock" in text
    assert "[dev]" not in text and ".[" not in text
    final_runs = " ".join(_instructions(dockerfile_stages()[-1], "RUN"))
    for tool in ("pip install", "apt-get install", "gcc", "build-essential"):
        assert tool not in final_runs, f"the final image must not run `{tool}`"


def test_runs_as_a_non_root_user() -> None:
    users = _instructions(dockerfile_stages()[-1], "USER")
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_healthcheck_entrypoint_and_port() -> None:
    final = dockerfile_stages()[-1]
    healthcheck = " ".join(_instructions(final, "HEALTHCHECK"))
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    # Exec form: python is PID 1 and gets SIGTERM itself (a shell would swallow it).
    assert json.loads(_instructions(final, "ENTRYPOINT")[-1]) == ["python", "-m", "app"]
    assert json.loads(_instructions(final, "CMD")[-1]) == ["serve"]
    assert _instructions(final, "EXPOSE") == ["8000"]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_pins_every_main_dependency_with_hashes_and_nothing_from_dev() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {_normalise(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    for requirement in project["dependencies"]:
        name = _normalise(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        assert name in pinned, f"{name} is not in requirements.lock: run `make lock`"
    for requirement in project["optional-dependencies"]["dev"]:
        name = _normalise(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        assert name not in pinned, f"dev tool {name} must not reach the image"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.strip())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)
