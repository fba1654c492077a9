"""Prometheus metrics, served at /metrics (by the API and by each worker on METRICS_PORT).

Counters and histograms live in the process. The operator gauges (queue depth by task, dead events, the
oldest waiting event, jobs by status) are database facts, read when /metrics is scraped and rendered from a
`GaugeReadings` snapshot, so every process reports the same numbers and none has to keep them current.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

# The client chose its value storage from this variable when it was imported (just above): several uvicorn
# processes then write their samples to files there, and /metrics must aggregate those files.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("http_request_duration_seconds", "HTTP request latency", ["route"])
WEBHOOKS = Counter("webhooks_total", "Webhook deliveries", ["kind", "outcome"])
JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs accepted from upstream")
JOBS_ENDED = Counter("jobs_ended_total", "Jobs that reached a final status (counted as the end is written)",
                     ["kind", "status"])  # fmt: skip
INGEST_ROWS = Counter("ingest_rows_total", "Prediction rows stored")
INGEST_SECONDS = Histogram(
    "ingest_seconds", "Time to store one job's predictions", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
)
TTS_CACHE = Counter("tts_cache_requests_total", "TTS requests by cache result", ["result"])
HUME_TOKEN_FETCHES = Counter("hume_token_fetches_total", "Access tokens fetched from Hume", ["outcome"])
HUME_REQUEST_SECONDS = Histogram(
    "hume_request_seconds", "One HTTP request to Hume, until its response headers (status: HTTP code, timeout, error)",
    ["operation", "status"], buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)  # fmt: skip
HUME_BUDGET_WAIT_SECONDS = Counter(
    "hume_rate_budget_wait_seconds", "Time Hume requests waited for the organization's shared rate budget",
    ["operation"],
)  # fmt: skip
HUME_BUDGET_WAITS = Counter(
    "hume_rate_budget_waits", "Hume requests that had to wait for the shared rate budget", ["operation"]
)
# No tenant label: tenants are free text made with each key (`create-key --tenant`), so a label per tenant
# would grow without bound; per-tenant spending is in Postgres (`python -m app tenant-budget TENANT --show`).
HUME_ESTIMATED_SECONDS = Counter(
    "hume_estimated_seconds_total", "Our estimate of the seconds Hume meters (HUME-V1-FACTS §6 billing rules),"
    " counted when a v1 file request is answered with a result (mode file) and when a live session ends (mode"
    " realtime); Hume's own figure, read later, is hume_billed_seconds_total", ["endpoint", "mode"],
)  # fmt: skip
HUME_BILLED_SECONDS = Counter(
    "hume_billed_seconds_total", "Seconds Hume metered (its runs API's metered_seconds), counted when a run's"
    " figure is read; runs whose figure is never read keep the estimate (hume_run_reads_total{outcome=\"estimate\"})",
    ["endpoint", "mode"],
)  # fmt: skip
HUME_RUN_READS = Counter(
    "hume_run_reads_total", "Reads of a v1 run's billed seconds from Hume's runs API, by outcome: billed (Hume's"
    " figure stored), late (no run yet or still live: read again later), estimate (tries spent: our estimate"
    " kept), failed (Hume or the network failed: read again later)", ["outcome"],
)  # fmt: skip
HUME_UNOWNED_RUNS = Gauge(
    "hume_unowned_runs", "Runs Hume billed in the last check's window that no job of ours owns (the log line"
    " `hume runs no job owns` names them)", multiprocess_mode="mostrecent",
)  # fmt: skip
HUME_TENANT_BUDGET_REFUSALS = Counter(
    "hume_tenant_budget_refusals_total", "v1 requests not sent, and live sessions refused or ended, because their"
    " tenant's daily budget of Hume-metered seconds was spent; Audio Decisions windows not sent (endpoint"
    " decisions) because the daily budget of input tokens was",
    ["endpoint"],
)  # fmt: skip
HUME_DECISION_INPUT_TOKENS = Counter(
    "hume_decision_input_tokens_total", "Audio Decisions input tokens of windows Hume answered: figure estimated"
    " (Hume's free estimate, reserved before sending) and billed (received.input_tokens in Hume's answer)",
    ["figure"],
)  # fmt: skip
WEBHOOK_DELIVERIES = Counter(
    "outbound_webhook_attempts_total", "Attempts to deliver our webhooks, by outcome", ["outcome"]
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "outbound_webhook_attempt_seconds", "Time of one outbound webhook attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
WEBHOOK_ENDPOINTS_DISABLED = Counter("outbound_webhook_endpoints_disabled_total", "Endpoints we disabled", ["reason"])
# Set by the reconciler of whichever process runs it; across processes the latest value is the truth.
WEBHOOK_MESSAGES_WAITING = Gauge(
    "outbound_webhook_messages_waiting", "Outbound messages not yet delivered", multiprocess_mode="mostrecent"
)


@dataclass(frozen=True)
class GaugeReadings:
    """Database facts at scrape time; None where the read failed or timed out (the gauge is then left out,
    so a dashboard shows a gap instead of a false zero)."""

    queue_depth: Mapping[str, int] | None = None
    """procrastinate tasks to do or being done, by task name."""
    dead_events: int | None = None
    oldest_waiting_event_seconds: float | None = None
    """Age of the oldest inbox event not processed yet; 0 when none waits."""
    jobs: Mapping[str, int] | None = None
    """Jobs by status."""


class _Readings:
    """A collector over one snapshot (GaugeMetricFamily is plain data: no value files in multiprocess mode)."""

    def __init__(self, readings: GaugeReadings) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        r = self.readings
        if r.queue_depth is not None:
            family = GaugeMetricFamily("queue_depth", "Queue tasks to do or being done, by task", labels=["task"])
            for task, count in sorted(r.queue_depth.items()):
                family.add_metric([task], count)
            yield family
        if r.dead_events is not None:
            yield GaugeMetricFamily("dead_events", "Inbox events whose retries are exhausted", value=r.dead_events)
        if r.oldest_waiting_event_seconds is not None:
            yield GaugeMetricFamily(
                "oldest_waiting_event_seconds", "Age of the oldest inbox event not processed yet",
                value=r.oldest_waiting_event_seconds,
            )  # fmt: skip
        if r.jobs is not None:
            family = GaugeMetricFamily("jobs", "Jobs by status", labels=["status"])
            for status, count in sorted(r.jobs.items()):
                family.add_metric([status], count)
            yield family


def exposition(readings: GaugeReadings) -> bytes:
    """This process's metrics (every process's, in multiprocess mode) followed by the database gauges."""
    if MULTIPROCESS_DIR is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Readings(readings))
    return own + generate_latest(gauges)


def clear_multiprocess_dir(path: str) -> None:
    """Remove the value files of earlier runs (their counters would be added to this run's)."""
    directory = os.fspath(path)
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))
