"""Audio Decisions on the dashboard in a real browser: a decision job run over a recording served on a socket
(the emulator answering), then the question-set page (one chart per question, counting every window's answer)
and the job page's answers (a span timeline, each window's typed answers) drawn without a console error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sync_key
from tests.browser.test_dashboard import series, signed_in_page
from tests.conftest import Service, ServiceFactory
from tests.e2e.test_decision_jobs import GAPS, QUESTIONS, answers, make_set
from tests.e2e.test_spine import wait_for_status
from tests.media_factory import make_wav
from tests.v1.media_server import media_server


@pytest.fixture
def service(make_service: ServiceFactory) -> Service:
    """The browser fixture's service, allowed to fetch from the local media server."""
    return make_service(allow_private_hosts="127.0.0.1")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("decision-pages")
    make_wav(directory / "talk.wav", 120.0, rate=16_000, gaps=GAPS)
    with media_server(directory) as url:
        yield url


def test_question_set_page_and_job_answers_render(service: Service, browser: Any, media: str, output_dir: Path) -> None:
    set_id = make_set(service)
    with service.client() as client:
        body = {"urls": [f"{media}/media/talk.wav"], "decisions": {"question_set": set_id, "window_s": 30}}
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        assert wait_for_status(client, job_id, {"completed", "failed"}, timeout=60)["status"] == "completed"
    stored = answers(service.database_url, job_id)
    page, errors = signed_in_page(browser, service, sync_key(service.database_url, ["read"], name="analyst"))

    page.click("nav a:has-text('Question sets')")
    page.click(f"tr[data-set='{set_id}'] a")
    page.wait_for_selector("section.question svg")
    assert page.eval_on_selector_all("section.question", "els => els.map(e => e.dataset.question)") == [
        q["id"] for q in QUESTIONS
    ]
    for question in QUESTIONS:
        # One chart per question; its bars count the four windows' answers.
        bars = page.eval_on_selector_all(
            f"#question-{question['id']} svg g[data-series] rect",
            "els => els.map(e => e.querySelector('title').textContent)",
        )
        assert sum(float(t.split(": ")[-1].split(" ")[0]) for t in bars) == 4, (question, bars)
    assert page.locator("#question-loud table.strongest tbody tr").count() == 1  # one recording
    page.screenshot(path=str(output_dir / "dashboard-question-set.png"), full_page=True)

    page.click("#question-loud table.strongest a")
    page.wait_for_selector("#answers table.answers-table")
    assert page.locator("#answers tr[data-window]").count() == 4
    loud = {r.window_index: r.share for r in stored if r.question_id == "loud"}
    shown = page.eval_on_selector_all("#answers td[data-question=loud]", "els => els.map(e => e.textContent)")
    assert shown == [f"{loud[i]:.2f}" for i in range(4)]
    spans = sum(len(r.spans) for r in stored if r.question_id == "sound")
    assert series(page, "#spans-0 g[data-series]") == ["sound"]
    assert page.locator("#spans-0 rect[data-kind=span]").count() == spans > 0
    assert page.locator("#spans-0 line[data-kind=window]").count() == 3
    page.screenshot(path=str(output_dir / "dashboard-job-answers.png"), full_page=True)
    assert errors == []
