"""compose.yaml against the code: commands the CLI has, settings README documents, health checks on real routes."""

from __future__ import annotations

import re
from typing import Any

from app import cli
from app.config import Settings
from app.emulator import EmulatorConfig
from app.emulator.cli import build_parser as emulator_parser
from app.emulator.server import create_app as emulator_app
from app.web import application as api_routes
from tests.deploy.artifacts import (
    WORKER_METRICS_PORT,
    app_services,
    compose,
    documented_settings,
)


def _parses(command: list[str]) -> bool:
    """What `python -m app COMMAND` would accept (the emulator owns its options, as in cli.main)."""
    try:
        if command[:1] == ["emulator"]:
            emulator_parser().parse_args(command[1:])
        else:
            cli.parser().parse_args(command)
    except SystemExit:
        return False
    return True


def _healthcheck_url(service: dict[str, Any]) -> tuple[int, str]:
    test = " ".join(service["healthcheck"]["test"])
    found = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\"\s]*)", test)
    assert found, f"health check without a local URL: {test}"
    return int(found.group(1)), found.group(2)


def test_every_app_service_runs_a_command_the_cli_has() -> None:
    services = app_services()
    assert {"migrate", "api", "worker", "emulator"} <= set(services)
    for name, service in services.items():
        assert _parses(service["command"]), f"{name}: `python -m app {' '.join(service['command'])}` is not a command"
    assert not _parses(["no-such-command"])  # the check can fail


def test_every_variable_set_for_the_app_is_a_documented_setting() -> None:
    documented = documented_settings()
    assert {"DATABASE_URL", "PUBLIC_BASE_URL", "RUN_WORKER", "HOST", "PORT"} <= documented
    for name, service in app_services().items():
        unknown = set(service.get("environment") or {}) - documented
        assert not unknown, f"{name} sets undocumented variables {sorted(unknown)}"


def test_the_deployment_settings_are_documented() -> None:
    deployment = {"ENVIRONMENT", "WEB_CONCURRENCY", "METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR", "DB_POOL_SIZE"}
    assert deployment <= documented_settings()


def test_processes_that_call_hume_know_where_callbacks_go() -> None:
    """The silent misconfiguration of issue 16: a worker without PUBLIC_BASE_URL builds callbacks for
    127.0.0.1 and every job waits for the reconciler."""
    services = app_services()
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["PUBLIC_BASE_URL"].endswith("//api:8000}"), env["PUBLIC_BASE_URL"]
        assert env["RUN_WORKER"] == "false", "the api must leave tasks to the worker service"
        assert env["ENVIRONMENT"] == "production"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["api"]["environment"]["PORT"] == "8000"


def test_app_services_start_after_migrations_and_migrations_after_postgres() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["emulator"]["profiles"] == ["emulator"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["observability"]


def test_health_checks_point_at_real_routes() -> None:
    api_paths = {getattr(route, "path", None) for route in api_routes.routes(Settings())}
    emulator_paths = {getattr(route, "path", None) for route in emulator_app(EmulatorConfig()).routes}
    # The worker's metrics server serves the same health and metrics paths as the API.
    served = {8000: api_paths, WORKER_METRICS_PORT: api_paths & {"/healthz", "/metrics"}, 8001: emulator_paths}
    services = app_services()
    for name in ("api", "worker", "emulator"):
        port, path = _healthcheck_url(services[name])
        assert path in served[port], f"{name}: health check on :{port}{path}, which serves no such route"
    assert "/readyz" not in served[8001]  # the check can fail
