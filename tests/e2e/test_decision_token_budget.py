"""Each tenant's daily budget of Audio Decisions input tokens, end to end: recordings made with PyAV served over a
socket, the service and the emulator's Audio Decisions API (which reports `received.input_tokens` and estimates
them for free) on real sockets, real Postgres. A decision job reserves each window's tokens before asking; a job
that meets the spent budget stops asking, keeps its answers and fails hume_budget_exhausted; a spent day refuses
submission with 429; a tenant's own limit set with `tenant-budget --decision-tokens` replaces the setting for it;
/v1/usage and the Usage page report the tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.emulator.testing import EmulatorServer
from tests.conftest import ServiceFactory, create_key
from tests.e2e.test_decision_jobs import GAPS, QUESTIONS, answers, make_set
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_wav
from tests.v1.media_server import media_server
from tests.v1.test_v1_billed_usage import _execute
from tests.v1.test_v1_hume_budget import run_cli
from tests.v1.test_v1_jobs import FINAL, rows

SCOPES = ["submit", "read", "webhooks"]
BUDGET = 2000
"""Tokens a day: two of talk.wav's 30 s windows (about 800 each at the emulator's rate), not three."""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("decision-budget-media")
    make_wav(directory / "talk.wav", 120.0, rate=16_000, gaps=GAPS)
    make_wav(directory / "short.wav", 20.0, rate=16_000)
    with media_server(directory) as url:
        yield url


def _billed_tokens(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hume_decision_input_tokens_total" and sample.labels.get("figure") == "billed":
                return float(sample.value)
    return 0.0


def test_budget_spent_mid_job_stops_it_failed_keeping_the_answers(
    make_service: ServiceFactory, emulator: EmulatorServer, media: str
) -> None:
    """A 2,000-token day pays for talk.wav's first two windows: the third is never sent, the job ends failed
    (hume_budget_exhausted, naming the budget and when it resets) with both windows' answers kept, and the source
    after it is not asked. Each window's reservation became the tokens Hume's answer reported, which /v1/usage
    and the Usage page report per tenant and day."""
    service = make_service(allow_private_hosts="127.0.0.1", hume_tenant_daily_decision_tokens=BUDGET)
    key = create_key(service.database_url, SCOPES, name="a", tenant="tenant-a")
    set_id = make_set(service, key=key)
    talk, short = f"{media}/media/talk.wav", f"{media}/media/short.wav"
    billed_before = _billed_tokens(service.url)
    with service.client(key) as client:
        # Hume's free estimate of each window (the job reserves the same figures): two fit the day, three do not.
        body = {"urls": [talk], "decisions": {"question_set": set_id, "window_s": 30, "estimate": True}}
        windows = [w["input_tokens"] for w in client.post("/v1/jobs", json=body).json()["sources"][0]["windows"]]
        assert len(windows) == 4 and sum(windows[:2]) <= BUDGET < sum(windows[:3]), windows
        emulator.reset()

        body = {"urls": [talk, short], "decisions": {"question_set": set_id, "window_s": 30}}
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job = wait_for_status(client, response.json()["id"], FINAL, timeout=60)

        assert job["status"] == "failed", job
        assert job["error"]["code"] == "hume_budget_exhausted"
        message = job["error"]["message"]
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        assert f"'tenant-a' has spent {sum(windows[:2])} of its {BUDGET} Audio Decisions input tokens" in message
        assert f"needs {windows[2]} tokens" in message and f"resets at {tomorrow}T00:00:00Z" in message
        # The third window was never sent (its free estimate was asked), nor anything of the second source.
        calls = emulator.calls()
        assert calls.get("POST /v0/decisions/file") == 2, calls
        assert calls.get("POST /v0/decisions/file/input_tokens") == 3, calls

        stored = answers(service.database_url, job["id"])
        assert sorted({(r.source_index, r.window_index) for r in stored}) == [(0, 0), (0, 1)]
        assert len(stored) == 2 * len(QUESTIONS)
        decisions = job["details"]["decisions"]
        first, second = decisions["sources"]
        assert first["answered"] == 2 and first["error"]["code"] == "hume_budget_exhausted"
        assert second["answered"] == 0 and second["error"]["code"] == "hume_budget_exhausted"
        assert decisions["input_tokens"] == sum(windows[:2])
        sources = rows(service.database_url, "SELECT position, error, file_errors FROM source WHERE job_id = :id"
                       " ORDER BY position", id=job["id"])  # fmt: skip
        assert sources[0].error is None and "hume_budget_exhausted" in sources[0].file_errors[0]["error"]
        assert "hume_budget_exhausted" in sources[1].error

        # Each reservation was replaced by the tokens Hume's answer reported (the emulator bills its estimate).
        usage = rows(service.database_url, "SELECT chunk, medium, input_tokens, seconds, billing, run_id FROM"
                     " hume_usage WHERE job_id = :id ORDER BY chunk", id=job["id"])  # fmt: skip
        assert [(u.chunk, u.medium, u.input_tokens, u.seconds, u.billing) for u in usage] == [
            (0, "decisions", windows[0], 0.0, "hume"), (1, "decisions", windows[1], 0.0, "hume")
        ]  # fmt: skip
        assert all(u.run_id for u in usage)
        assert _billed_tokens(service.url) - billed_before == sum(windows[:2])

        report = client.get("/v1/usage", params={"group_by": "day,tenant"}).json()
        [today] = report["items"]
        assert today["group"] == {"day": datetime.now(UTC).date().isoformat(), "tenant": "tenant-a"}
        assert (today["decision_input_tokens"], today["decision_windows"]) == (sum(windows[:2]), 2)
        assert (today["metered_seconds"], today["requests"]) == (0.0, 0)

    with httpx.Client(base_url=service.url, timeout=30) as browser:
        assert browser.post("/dashboard/signin", data={"key": key}).status_code == 303
        page = browser.get("/dashboard/usage")
    assert page.status_code == 200, page.text
    assert f"{sum(windows[:2])} Audio Decisions input tokens" in page.text
    assert f"<td>{sum(windows[:2])}</td>" in page.text


def test_a_spent_day_refuses_submission_with_429(make_service: ServiceFactory, media: str) -> None:
    """A tenant whose day has no token left is refused at submission (429 hume_budget_exhausted, Retry-After
    until the UTC day ends, the seconds budget's error body in tokens); an estimate (free) and another tenant's
    job are not."""
    service = make_service(allow_private_hosts="127.0.0.1", hume_tenant_daily_decision_tokens=1000)
    key_a = create_key(service.database_url, SCOPES, name="a", tenant="tenant-a")
    key_b = create_key(service.database_url, SCOPES, name="b", tenant="tenant-b")
    set_a, set_b = make_set(service, key=key_a), make_set(service, key=key_b)
    _execute(service.database_url, "INSERT INTO hume_tenant_day (tenant, day, input_tokens, limit_input_tokens)"
             " VALUES ('tenant-a', (now() AT TIME ZONE 'UTC')::date, 1000, 1000)")  # fmt: skip
    url = f"{media}/media/short.wav"
    with service.client(key_a) as a, service.client(key_b) as b:
        refused = a.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_a}})
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "hume_budget_exhausted"
        assert "'tenant-a' has spent 1000 of its 1000 Audio Decisions input tokens" in error["message"]
        assert "HUME_TENANT_DAILY_DECISION_TOKENS" in error["message"]
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        assert error["details"] == {
            "tenant": "tenant-a", "day": datetime.now(UTC).date().isoformat(), "limit_input_tokens": 1000,
            "spent_input_tokens": 1000, "resets_at": f"{tomorrow}T00:00:00Z",
        }  # fmt: skip
        assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
        assert a.get("/v1/jobs").json()["items"] == []

        estimate = a.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_a, "estimate": True}})
        assert estimate.status_code == 200, estimate.text
        other = b.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_b}})
        assert other.status_code == 202, other.text
        assert wait_for_status(b, other.json()["id"], FINAL, timeout=60)["status"] == "completed"


def test_a_tenant_s_own_token_limit_set_shown_and_cleared_with_the_cli(
    make_service: ServiceFactory, media: str
) -> None:
    """`tenant-budget TENANT --decision-tokens N` gives one tenant its own daily tokens (the setting unset: no
    limit for the others): once its day has spent them its decision jobs are refused 429 hume_budget_exhausted
    naming its own limit, while another tenant's pass; `--show` prints it, `--default-decision-tokens` goes back
    to the setting, and a negative is refused (exit 2, one error line) storing nothing. Its seconds stay apart."""
    service = make_service(allow_private_hosts="127.0.0.1")
    key_a = create_key(service.database_url, SCOPES, name="a", tenant="tenant-a")
    key_b = create_key(service.database_url, SCOPES, name="b", tenant="tenant-b")
    set_a, set_b = make_set(service, key=key_a), make_set(service, key=key_b)
    _execute(service.database_url, "INSERT INTO hume_tenant_day (tenant, day, input_tokens)"
             " VALUES ('tenant-a', (now() AT TIME ZONE 'UTC')::date, 1500)")  # fmt: skip

    refused = run_cli(service.database_url, "tenant-budget", "tenant-a", "--decision-tokens", "-5")
    assert refused.returncode == 2 and refused.stdout == ""
    [error] = [line for line in refused.stderr.splitlines() if not line.startswith((" ", "usage:"))]
    assert "--decision-tokens" in error and "-5" in error and "0 (no limit) or more" in error, refused.stderr

    own = run_cli(
        service.database_url,
        "tenant-budget",
        "tenant-a",
        "--decision-tokens",
        "1500",
        HUME_TENANT_DAILY_SECONDS="36000",
    )
    assert own.returncode == 0, own.stderr
    assert "1500 tokens of Audio Decisions input tokens a day (its own" in own.stdout, own.stdout
    assert "1500 tokens spent, 0 tokens left" in own.stdout
    assert "36000 s (10 h) of Hume-metered seconds a day (HUME_TENANT_DAILY_SECONDS" in own.stdout

    url = f"{media}/media/short.wav"
    with service.client(key_a) as a, service.client(key_b) as b:
        spent = a.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_a}})
        assert spent.status_code == 429, spent.text
        error_body = spent.json()["error"]
        assert error_body["code"] == "hume_budget_exhausted"
        assert "'tenant-a' has spent 1500 of its 1500 Audio Decisions input tokens" in error_body["message"]
        assert "its own limit" in error_body["message"]
        details = error_body["details"]
        assert (details["limit_input_tokens"], details["spent_input_tokens"]) == (1500, 1500)
        other = b.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_b}})
        assert other.status_code == 202, other.text
        assert wait_for_status(b, other.json()["id"], FINAL, timeout=60)["status"] == "completed"

        shown = run_cli(service.database_url, "tenant-budget", "tenant-a", "--show")
        assert shown.returncode == 0 and "1500 tokens of Audio Decisions input tokens a day (its own" in shown.stdout
        cleared = run_cli(service.database_url, "tenant-budget", "tenant-a", "--default-decision-tokens")
        assert cleared.returncode == 0, cleared.stderr
        assert "no limit of Audio Decisions input tokens a day (HUME_TENANT_DAILY_DECISION_TOKENS" in cleared.stdout
        assert "1500 tokens spent; resets at" in cleared.stdout

        again = a.post("/v1/jobs", json={"urls": [url], "decisions": {"question_set": set_a}})
        assert again.status_code == 202, again.text
        assert wait_for_status(a, again.json()["id"], FINAL, timeout=60)["status"] == "completed"
    assert rows(service.database_url, "SELECT count(*) AS n FROM hume_tenant_budget")[0].n == 0
