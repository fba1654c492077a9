"""The dashboard over real HTTP: the jobs list with 10,000 jobs (p50), and a one-hour job's page (bytes, time).

Baselines from the same run and server: GET /healthz (what any request costs) for the list's time, and
the API's own JSON summary of the same job for the page's bytes and time (the page adds charts to it).
Targets (issue 14): list p50 < 100 ms; the page's HTML and data < 300 kB.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable

import httpx
import psycopg

from app.batch import prediction_import as importer
from app.store.db import make_engine, make_sessionmaker
from bench import payloads
from bench.__main__ import Context
from bench.service_process import serve
from tests.browser.conftest import sync_key

JOBS = 10_000


def one_hour_panel() -> bytes:
    """The issue's one-hour video of about 29k predictions: three faces in every frame at 3 fps, and prosody."""
    return payloads.payload(
        ["https://media.example.com/panel.mp4#duration=3600&faces=3&group"], {"face": {"fps_pred": 3}, "prosody": {}}
    )


def _p50_ms(call: Callable[[], object], n: int) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _many_jobs(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        statuses = ("completed", "completed", "completed", "failed", "in_progress")
        with cur.copy("COPY job (id, kind, status, metadata, num_predictions) FROM STDIN") as copy:
            for i in range(JOBS):
                copy.write_row((uuid.uuid4(), "batch", statuses[i % 5], f'{{"team": "t{i % 7}"}}', i % 3000))


def _one_hour_job(database_url: str) -> tuple[str, int]:
    async def run() -> tuple[str, int]:
        engine = make_engine(database_url, pool_size=1)
        try:
            job_id, _ = await importer.import_document(
                make_sessionmaker(engine), one_hour_panel(), url=None, name="panel.json"
            )
        finally:
            await engine.dispose()
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM prediction WHERE job_id = %s", (job_id,)).fetchone()
        return str(job_id), int(row[0]) if row else 0

    return asyncio.run(run())


def run(ctx: Context) -> None:
    with ctx.database() as url:
        _many_jobs(url)
        job_id, predictions = _one_hour_job(url)
        with serve(url, HUME_API_KEY="bench", HUME_BASE_URL="http://127.0.0.1:9") as server_url:
            key = sync_key(url, ["read"])
            with httpx.Client(base_url=server_url, timeout=30) as client:
                signed = client.post("/dashboard/signin", data={"key": key})
                assert signed.status_code == 303, signed.text
                health = _p50_ms(lambda: client.get("/healthz"), 50)
                listed = _p50_ms(lambda: client.get("/dashboard/jobs").raise_for_status(), 50)
                ctx.report("dashboard_jobs_list_10k_p50", listed, "ms", baseline=health, baseline_name="healthz_p50")
                filtered = _p50_ms(
                    lambda: client.get("/dashboard/jobs", params={"status": "failed", "metadata": '{"team": "t3"}'}),
                    30,
                )
                ctx.report(
                    "dashboard_jobs_list_10k_filtered_p50", filtered, "ms", baseline=health,
                    baseline_name="healthz_p50",
                )  # fmt: skip
                page = client.get(f"/dashboard/jobs/{job_id}")
                page.raise_for_status()
                api = httpx.get(
                    f"{server_url}/v1/jobs/{job_id}/summary", headers={"Authorization": f"Bearer {key}"}, timeout=30
                )
                page_bytes = len(page.content) + len(client.get("/dashboard/static/dashboard.css").content)
                page_bytes += len(client.get("/dashboard/static/dashboard.js").content)
                ctx.report(
                    f"dashboard_job_page_bytes_{predictions}_predictions", page_bytes, "bytes",
                    baseline=len(api.content), baseline_name="summary_json_bytes",
                )  # fmt: skip
                page_ms = _p50_ms(lambda: client.get(f"/dashboard/jobs/{job_id}").raise_for_status(), 10)
                api_ms = _p50_ms(
                    lambda: httpx.get(
                        f"{server_url}/v1/jobs/{job_id}/summary", headers={"Authorization": f"Bearer {key}"}
                    ),
                    10,
                )
                ctx.report("dashboard_job_page_p50", page_ms, "ms", baseline=api_ms, baseline_name="summary_json_p50")
