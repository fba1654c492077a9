"""Retention over real HTTP: a tenant's retention set with `python -m app tenant-retention`, a month past it
dropped by the prune's upkeep, and the job that had predictions there answering clearly: 410
predictions_expired for its pages, CSV and timeline, its summary still served and saying so; a newer job of
the same tenant untouched; `python -m app export` of it refuses, saying why."""

from __future__ import annotations

import asyncio
from datetime import date

import psycopg

from app.store import prediction_partitions as partitions
from tests.conftest import Service, create_key
from tests.e2e.test_analytics import face_doc, import_documents
from tests.e2e.test_cli import run_cli
from tests.e2e.test_dashboard_access import signed_in

OLD = date(2025, 1, 1)


def expire_first(database_url: str, expired: str) -> partitions.Upkeep:
    """Move the job's rows to January 2025, then run the prune's upkeep."""

    async def run() -> partitions.Upkeep:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await partitions.ensure(conn, "default", [OLD])
            await conn.execute("UPDATE prediction SET stored_at = '2025-01-20T00:00:00Z' WHERE job_id = %s", (expired,))
            return await partitions.upkeep(conn, default_days=0)

    return asyncio.run(run())


def test_a_job_whose_predictions_expired_answers_410_and_keeps_its_summary(service: Service) -> None:
    expired, kept = import_documents(
        service.database_url,
        face_doc("https://media.example/old.mp4", 0.9),
        face_doc("https://media.example/new.mp4", 0.3),
    )
    shown = run_cli("tenant-retention", "default", "--days", "90", database_url=service.database_url)
    assert shown.returncode == 0, shown.stderr
    assert "kept 90 days" in shown.stdout and "its own" in shown.stdout
    done = expire_first(service.database_url, expired)
    assert done.dropped == [partitions.month_table("default", OLD)] and done.expired_jobs == 1
    with service.client() as client:
        for path, params, headers in (
            (f"/v1/jobs/{expired}/predictions", {}, {}),
            (f"/v1/jobs/{expired}/predictions.csv", {}, {}),
            (f"/v1/jobs/{expired}/predictions", {}, {"Accept": "text/csv"}),
            (f"/v1/jobs/{expired}/timeline", {"model": "face", "emotion": "Anger"}, {}),
        ):
            gone = client.get(path, params=params, headers=headers)
            assert gone.status_code == 410, (path, gone.text)
            error = gone.json()["error"]
            assert error["code"] == "predictions_expired"
            assert f"/v1/jobs/{expired}/summary" in error["message"]
            assert error["details"]["predictions_expired_at"]
        summary = client.get(f"/v1/jobs/{expired}/summary").json()
        assert summary["predictions_expired"] is True
        anger = next(e for e in summary["models"]["face"]["emotions"] if e["name"] == "Anger")
        assert summary["models"]["face"]["predictions"] == 6 and anger["mean"] == 0.9
        assert client.get(f"/v1/jobs/{expired}").json()["predictions_expired_at"] is not None
        page = client.get(f"/v1/jobs/{kept}/predictions")
        assert page.status_code == 200 and len(page.json()["items"]) == 6
        assert client.get(f"/v1/jobs/{kept}/summary").json()["predictions_expired"] is False
        assert client.get(f"/v1/jobs/{kept}").json()["predictions_expired_at"] is None
    browser = signed_in(service, create_key(service.database_url, ["read"]))
    try:
        gone_page = browser.get(f"/dashboard/jobs/{expired}")
        kept_page = browser.get(f"/dashboard/jobs/{kept}")
    finally:
        browser.close()
    assert gone_page.status_code == 200 and 'id="predictions-expired"' in gone_page.text
    assert f"/v1/jobs/{expired}/predictions.csv" not in gone_page.text and "Top emotions" in gone_page.text
    assert kept_page.status_code == 200 and 'id="predictions-expired"' not in kept_page.text
    assert f"/v1/jobs/{kept}/predictions.csv" in kept_page.text
    exported = run_cli("export", expired, database_url=service.database_url)
    assert exported.returncode == 1 and "predictions were deleted" in exported.stderr
    listed = run_cli("tenant-retention", "default", database_url=service.database_url)
    assert "2025-01" not in listed.stdout and "months stored (UTC): " in listed.stdout
