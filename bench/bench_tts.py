"""POST /v1/tts over real HTTP: a cache hit (Postgres lookup, hit counted) against a bare endpoint (/healthz)
of the same app, and a miss (the emulator synthesizing) for scale."""

from __future__ import annotations

import statistics

from bench.__main__ import Context
from bench.bench_tokens import interleaved_calls, latencies_ms, running_service

REQUESTS = 2000
PHRASE = {"text": "Thanks for calling. How can I help you today?", "format": "mp3"}


def run(ctx: Context) -> None:
    with running_service(ctx) as (client, emulator):
        miss = latencies_ms(lambda: client.post("/v1/tts", json=PHRASE), 1)[0]
        size = len(client.post("/v1/tts", json=PHRASE).content)
        latencies_ms(lambda: client.get("/healthz"), 200)  # warm-up
        latencies_ms(lambda: client.post("/v1/tts", json=PHRASE), 200)
        bare, hits = interleaved_calls(
            lambda: client.get("/healthz"), lambda: client.post("/v1/tts", json=PHRASE), REQUESTS
        )
        upstream = emulator.calls().get("POST /v0/tts", 0)
    baseline = statistics.median(bare)
    ctx.report("tts_hit_p50", statistics.median(hits), "ms", baseline=baseline, baseline_name="healthz_p50")
    added = statistics.median(hits) - baseline
    ctx.report("tts_hit_added_p50", added, "ms", baseline=baseline, baseline_name="healthz_p50")
    ctx.report(
        "tts_hit_p99",
        statistics.quantiles(hits, n=100)[98],
        "ms",
        baseline=statistics.quantiles(bare, n=100)[98],
        baseline_name="healthz_p99",
    )
    ctx.report("tts_miss", miss, "ms", baseline=baseline, baseline_name="healthz_p50")
    ctx.report("tts_hit_bytes", size, "bytes", baseline=size, baseline_name="tts_hit_bytes")
    ctx.report("tts_upstream_calls", upstream, "calls", baseline=REQUESTS + 202, baseline_name="tts_requests")
