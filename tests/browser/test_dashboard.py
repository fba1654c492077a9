"""The dashboard in a real browser: sign in, open a job the emulator completed, see its charts drawn,
redraw with another emotion, read an EVI chat's transcript; no console error; screenshots kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sync_key
from tests.conftest import Service
from tests.e2e.test_evi import EVI_PATH, wait_for_chat
from tests.e2e.test_spine import wait_for_status


def completed_job(service: Service) -> tuple[str, dict[str, Any]]:
    """A face + prosody job over a one-minute video, completed through the emulator; (id, summary)."""
    with service.client() as client:
        created = client.post(
            "/v1/jobs",
            json={"urls": ["https://example.com/panel.mp4#duration=60"], "models": {"face": {}, "prosody": {}}},
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        assert wait_for_status(client, job_id, {"completed", "failed"})["status"] == "completed"
        summary: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/summary").json()
    return job_id, summary


def signed_in_page(browser: Any, service: Service, key: str, *, width: int = 1280) -> tuple[Any, list[str]]:
    """A page signed in through the form, and the list its console errors and page errors go to."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(service.url + "/dashboard/jobs")
    assert page.url.startswith(service.url + "/dashboard/signin")  # no session yet: sent to sign in
    page.fill("#key", key)
    page.click("form.signin button[type=submit]")
    page.wait_for_url(service.url + "/dashboard/jobs")
    return page, errors


def series(page: Any, selector: str) -> list[str]:
    names: list[str] = page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.series)")
    return names


def test_job_page_draws_the_charts_and_redraws_for_another_emotion(
    service: Service, browser: Any, output_dir: Path
) -> None:
    job_id, summary = completed_job(service)
    read_key = sync_key(service.database_url, ["read"], name="analyst")
    page, errors = signed_in_page(browser, service, read_key)
    assert page.locator(f"tr[data-job='{job_id}'] [data-field=status]").inner_text() == "completed"
    page.click(f"a[href='/dashboard/jobs/{job_id}']")
    page.wait_for_selector("#timeline-face svg polyline")

    face = [e["name"] for e in summary["models"]["face"]["emotions"]]
    # Bars: the ten highest means, one mean and one max bar each, in the API's order.
    assert series(page, "#bars-face rect[data-kind=mean]") == face[:10]
    assert series(page, "#bars-face rect[data-kind=max]") == face[:10]
    # Lines: the top five by default, each with points.
    assert series(page, "#timeline-face polyline") == face[:5]
    points = page.eval_on_selector_all("#timeline-face polyline", "els => els.map(e => +e.dataset.points)")
    assert all(n > 1 for n in points)
    prosody = [e["name"] for e in summary["models"]["prosody"]["emotions"]]
    assert series(page, "#timeline-prosody polyline") == prosody[:5]
    page.screenshot(path=str(output_dir / "dashboard-job.png"), full_page=True)

    # Choosing another emotion redraws the face timeline (and only it) with that line added.
    extra = face[20]
    page.check(f"form[data-target=timeline-face] input[value='{extra}']")
    page.wait_for_selector(f"#timeline-face polyline[data-series='{extra}']")
    assert series(page, "#timeline-face polyline") == [*face[:5], extra]
    page.uncheck(f"form[data-target=timeline-face] input[value='{face[0]}']")
    page.wait_for_function(
        "name => !document.querySelector(`#timeline-face polyline[data-series='${name}']`)", arg=face[0]
    )
    assert series(page, "#timeline-face polyline") == [*face[1:5], extra]
    # A coarser bucket: fewer points per line.
    before = page.eval_on_selector("#timeline-face polyline", "e => +e.dataset.points")
    page.fill("#bucket-face", "20")
    page.press("#bucket-face", "Enter")
    page.wait_for_selector("#timeline-face[data-bucket='20.0']")
    assert page.eval_on_selector("#timeline-face polyline", "e => +e.dataset.points") < before
    page.screenshot(path=str(output_dir / "dashboard-job-redrawn.png"), full_page=True)

    # Phone width: nothing sticks out sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(output_dir / "dashboard-job-phone.png"), full_page=False)
    assert errors == []


def test_evi_chat_page_shows_the_transcript_and_the_chat_timeline(
    service: Service, emulator: Any, browser: Any, output_dir: Path
) -> None:
    chat = emulator.create_chat(turns=6, seed="dashboard", webhook_url=service.url + EVI_PATH)
    with service.client() as client:
        job = wait_for_chat(client, chat["id"], {"completed"})
        rows = client.get(f"/v1/jobs/{job['id']}/predictions", params={"limit": 100}).json()["items"]
    page, errors = signed_in_page(browser, service, sync_key(service.database_url, ["read"]))
    page.goto(f"{service.url}/dashboard/jobs/{job['id']}")
    utterances = page.locator(".transcript .utterance")
    assert utterances.count() == len(rows) == 12
    rows.sort(key=lambda r: (r["time_begin"], r["id"]))
    for i in (0, 1, 11):
        item = utterances.nth(i)
        assert item.locator(".speaker").inner_text().lower() == rows[i]["group"]
        assert item.locator("p").inner_text() == rows[i]["text"].strip()
        top = sorted(rows[i]["scores"].items(), key=lambda kv: -kv[1])[:3]
        assert [li.split(" ")[0] for li in item.locator(".top3 li").all_inner_texts()] == [n for n, _ in top]
    assert len(series(page, "#timeline-prosody polyline")) == 5
    page.select_option("#group-prosody", "user")
    page.wait_for_selector("#timeline-prosody figcaption:has-text('group user')")
    page.screenshot(path=str(output_dir / "dashboard-evi-chat.png"), full_page=True)
    assert errors == []


@pytest.mark.slow
def test_running_job_status_updates_live_on_the_list(service: Service, browser: Any) -> None:
    """A job listed while still running turns `completed` on the open page without a reload."""
    with service.client() as client:
        created = client.post(
            "/v1/jobs",
            json={"urls": ["https://example.com/slow.mp4#duration=5&slow=4"], "models": {"face": {}}},
        ).json()
    page, errors = signed_in_page(browser, service, service.key)
    row = page.locator(f"tr[data-job='{created['id']}']")
    assert row.get_attribute("data-final") == "false"
    page.wait_for_selector(f"tr[data-job='{created['id']}'][data-final='true']", timeout=20_000)
    assert row.locator("[data-field=status]").inner_text() == "completed"
    assert int(row.locator("[data-field=num_predictions]").inner_text()) > 0
    assert errors == []
