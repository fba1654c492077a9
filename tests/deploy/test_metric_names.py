"""The dashboard and the alert rules query only metrics the service exports (scraped from a running server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from app.emulator.testing import EmulatorServer
from tests.conftest import Service, hume_environment
from tests.deploy.artifacts import (
    PROMETHEUS_BUILTIN,
    ROOT,
    alert_queries,
    dashboard_queries,
    exposition_names,
    is_exported,
    promql_metric_names,
)
from tests.servers import free_port


def _queried() -> set[str]:
    names: set[str] = set()
    for expr in [*dashboard_queries(), *alert_queries()]:
        names |= promql_metric_names(expr)
    return names - PROMETHEUS_BUILTIN


def _scrape(url: str) -> set[str]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return exposition_names(response.text)


def test_the_name_extractor_sees_metrics_and_skips_functions_and_labels() -> None:
    names = promql_metric_names(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{route=~"/v1/.*"}[5m])))'
        " / clamp_min(sum(rate(webhooks_total[5m])), 1e-9) > 0 or up == 0"
    )
    assert names == {"http_request_duration_seconds_bucket", "webhooks_total", "up"}


def test_dashboard_and_alerts_query_only_exported_metrics(service: Service) -> None:
    exported = _scrape(service.url)
    queried = _queried()
    assert {"webhooks_total", "ingest_rows_total", "tts_cache_requests_total"} <= queried
    missing = {name for name in queried if not is_exported(name, exported)}
    assert not missing, f"queried but not exported: {sorted(missing)}"
    assert not is_exported("no_such_metric_total", exported)  # the check can fail


def test_a_worker_process_serves_metrics_on_its_own_port(database_url: str, emulator: EmulatorServer) -> None:
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, **hume_environment(emulator),
        "PUBLIC_BASE_URL": "http://127.0.0.1:9", "LOG_LEVEL": "WARNING", "METRICS_PORT": str(port),
        "ENVIRONMENT": "production",
    }  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 8
        while True:
            try:
                exported = _scrape(f"http://127.0.0.1:{port}")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert {"queue_depth", "ingest_rows_total", "dead_events", "hume_request_seconds"} <= exported
        assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs", timeout=5).status_code == 404  # no API here
    finally:
        worker.terminate()
        worker.wait(timeout=15)
