"""Prometheus metrics, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("http_request_duration_seconds", "HTTP request latency", ["route"])
WEBHOOKS = Counter("webhooks_total", "Webhook deliveries", ["kind", "outcome"])
JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs accepted from upstream")
INGEST_ROWS = Counter("ingest_rows_total", "Prediction rows stored")
INGEST_SECONDS = Histogram(
    "ingest_seconds", "Time to store one job's predictions", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
)
QUEUE_DEPTH = Gauge("queue_depth", "Inbox events not yet processed")
TTS_CACHE = Counter("tts_cache_requests_total", "TTS requests by cache result", ["result"])
HUME_TOKEN_FETCHES = Counter("hume_token_fetches_total", "Access tokens fetched from Hume", ["outcome"])
WEBHOOK_DELIVERIES = Counter(
    "outbound_webhook_attempts_total", "Attempts to deliver our webhooks, by outcome", ["outcome"]
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "outbound_webhook_attempt_seconds", "Time of one outbound webhook attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
WEBHOOK_ENDPOINTS_DISABLED = Counter("outbound_webhook_endpoints_disabled_total", "Endpoints we disabled", ["reason"])
WEBHOOK_MESSAGES_WAITING = Gauge("outbound_webhook_messages_waiting", "Outbound messages not yet delivered")
