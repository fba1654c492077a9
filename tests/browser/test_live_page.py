"""The dashboard's live page in Chromium with its fake capture devices: sign in, start, see measurements drawn
as the relay passes them from the emulator, stop, and find the session's job completed with its predictions
stored. The fake microphone plays a WAV of a tone with a pause (Chromium loops it): with its built-in beeps
the emulator measured nothing in 12 s (too short to be utterances)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LAUNCH_ARGS, sync_key
from tests.browser.test_dashboard import signed_in_page
from tests.conftest import Service, ServiceFactory
from tests.media_factory import make_wav

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    """3.5 s of tone then 0.5 s of silence: one utterance a loop, measured at 3 s of speech (the emulator's
    default measurement_timer_ms, HUME-V1-FACTS §3) and again when it ends."""
    return make_wav(tmp_path / "speech.wav", 4.0, rate=48_000, gaps=[(3.5, 4.0)])


@pytest.fixture
def media_browser(chromium: str, service: Service, speech_wav: Path) -> Iterator[Any]:
    """Chromium whose microphone and camera are its fake devices, granted without asking."""
    from playwright.sync_api import sync_playwright

    args = [*LAUNCH_ARGS, *FAKE_MEDIA, f"--use-file-for-fake-audio-capture={speech_wav}"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=args, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def job_when_final(service: Service, job_id: str, limit_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    with service.client() as client:
        while True:
            job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] not in ("live", "queued", "in_progress") or time.monotonic() > deadline:
                return job
            time.sleep(0.2)


def predictions(service: Service, job_id: str) -> list[dict[str, Any]]:
    with service.client() as client:
        answer = client.get(f"/v1/jobs/{job_id}/predictions", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_live_page_measures_the_microphone_and_the_job_completes(
    service: Service, media_browser: Any, output_dir: Path
) -> None:
    key = sync_key(service.database_url, ["read", "session"], name="live")
    page, errors = signed_in_page(media_browser, service, key)
    page.click("nav a[href='/dashboard/live']")
    page.wait_for_url(service.url + "/dashboard/live")
    page.click("#live-start")
    item = page.locator("#live-jobs li[data-medium=audio][data-state=live]")
    item.wait_for()
    job_id = item.get_attribute("data-job")
    assert job_id
    with service.client() as client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "live"

    # Measurements drawn within seconds: the latest one's bars and the session's lines (compared below with
    # what was stored). All read at once, as a third measurement may be drawn meanwhile.
    page.wait_for_selector("#live-audio[data-measurements='2']", timeout=15_000)
    drawing = page.eval_on_selector(
        "#live-audio",
        """figure => ({
            count: +figure.dataset.measurements,
            bars: [...figure.querySelectorAll("svg.live-bars g[data-series]")]
                .map(g => [g.dataset.series, +g.dataset.value]),
            none: figure.querySelectorAll("svg.live-bars [data-none]").length,
            lines: figure.querySelectorAll("svg.live-lines polyline").length,
            counter: document.getElementById("live-audio-count").textContent,
        })""",
    )  # fmt: skip
    assert drawing["counter"] == f"{drawing['count']} measurements"
    page.screenshot(path=str(output_dir / "dashboard-live.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "nothing sticks out at phone width"

    page.click("#live-stop")
    page.wait_for_selector("#live-jobs li[data-medium=audio][data-state=ended]", timeout=20_000)
    assert "Session ended" in page.locator("#live-status").inner_text()
    drawn = int(page.get_attribute("#live-audio", "data-measurements") or 0)

    job = job_when_final(service, job_id)
    assert job["status"] == "completed", job
    assert job["kind"] == "session"
    assert job["metadata"] == {"source": "dashboard-live"}
    stored = predictions(service, job_id)
    # Every measurement the page drew is stored, and nothing else (Hume's last one may come after the close
    # request, and the page draws it too).
    assert len(stored) == job["num_predictions"] == drawn >= 2
    # The bars were the strongest (at most 8) of the latest measurement then, or a note that Hume judged no
    # expression present (its list may be empty); the lines, the session's strongest on average so far.
    in_order = sorted(stored, key=lambda p: p["time_end"])
    latest: dict[str, float] = in_order[drawing["count"] - 1]["scores"]
    bars = drawing["bars"]
    assert len(bars) == min(8, len(latest)) and drawing["none"] == (0 if latest else 1)
    assert [v for _, v in bars] == sorted((v for _, v in bars), reverse=True)
    assert all(latest[name] == pytest.approx(value, abs=1e-6) for name, value in bars)
    left_out = [v for name, v in latest.items() if name not in dict(bars)]
    assert all(value >= max(left_out, default=0) - 1e-6 for _, value in bars)
    assert (drawing["lines"] >= 1) == any(p["scores"] for p in in_order[: drawing["count"]])
    # The job page it links to opens.
    page.click(f"#live-jobs a[href='/dashboard/jobs/{job_id}']")
    page.wait_for_url(f"{service.url}/dashboard/jobs/{job_id}")
    assert errors == []


def test_live_page_with_the_camera_measures_faces_in_a_second_session(
    service: Service, media_browser: Any, output_dir: Path
) -> None:
    """With the camera toggle, the fake camera's frames (JPEGs from a canvas) go to a video session of their
    own, beside the voice's: two jobs, both completed with what the page drew."""
    key = sync_key(service.database_url, ["read", "session"], name="live")
    page, errors = signed_in_page(media_browser, service, key)
    page.goto(service.url + "/dashboard/live")
    page.check("#live-camera")
    page.click("#live-start")
    page.locator("#live-jobs li[data-medium=video]").wait_for()
    # The emulator finds faces by a hash of each JPEG, a clear one (confidence >= Hume's default 0.9) in about
    # one frame of five: 20 s of frames at 2.5 a second all without one would be a 1-in-50,000 run.
    page.wait_for_selector("#live-video svg.live-bars g[data-series]", timeout=20_000)
    # At least one: the voice may have been measured more than once while the frames were awaited.
    page.wait_for_function(
        "() => Number(document.querySelector('#live-audio').dataset.measurements) >= 1", timeout=15_000
    )
    assert page.eval_on_selector("#live-preview", "v => v.videoWidth") > 0
    page.screenshot(path=str(output_dir / "dashboard-live-camera.png"), full_page=True)
    page.click("#live-stop")
    page.wait_for_selector("#live-jobs li[data-state=ended] >> nth=1", timeout=20_000)
    assert page.locator("#live-jobs li[data-state=ended]").count() == 2
    frames = int(page.get_attribute("#live-video", "data-measurements") or 0)
    jobs = {m: page.get_attribute(f"#live-jobs li[data-medium={m}]", "data-job") or "" for m in ("audio", "video")}
    video = job_when_final(service, jobs["video"])
    assert video["status"] == "completed", video
    stored = predictions(service, jobs["video"])
    assert stored and len(stored) == video["num_predictions"]
    # One row per measured face; the page counted every frame's result, faces or not.
    assert len({row["time_begin"] for row in stored}) <= frames
    assert job_when_final(service, jobs["audio"])["status"] == "completed"
    assert errors == []


@pytest.fixture
def refusing_hume(make_service: ServiceFactory) -> Service:
    """A service whose Hume key Hume (the emulator) refuses."""
    return make_service(hume_cloud_api_key="not-the-key")


def test_live_page_says_why_when_hume_refuses_the_session(refusing_hume: Service, media_browser: Any) -> None:
    service = refusing_hume
    page, errors = signed_in_page(media_browser, service, sync_key(service.database_url, ["read", "session"]))
    page.goto(service.url + "/dashboard/live")
    page.click("#live-start")
    page.wait_for_selector("#live-jobs li[data-medium=audio][data-state=failed]", timeout=15_000)
    status = page.locator("#live-status")
    assert "(1011): Hume did not open the session" in status.inner_text()
    assert "error" in (status.get_attribute("class") or "")
    assert page.is_enabled("#live-start") and not page.is_enabled("#live-stop")
    job_id = page.get_attribute("#live-jobs li[data-medium=audio]", "data-job")
    job = job_when_final(service, job_id or "")
    assert job["status"] == "failed" and job["error"]["code"] == "hume_unauthorized"
    assert errors == []


def test_live_page_without_the_session_scope_says_so(service: Service, browser: Any) -> None:
    reader = sync_key(service.database_url, ["read"], name="reader")
    page, errors = signed_in_page(browser, service, reader)
    page.goto(service.url + "/dashboard/live")
    assert "lacks the session scope" in page.locator("#live-refused").inner_text()
    assert page.locator("#live-start").count() == 0
    assert errors == []
    # The token endpoint refuses it too (with the page's CSRF token), and refuses a post without that token
    # whatever the key.
    post = """async csrf => {
        const r = await fetch('/dashboard/live/token', {method: 'POST', body: new URLSearchParams({csrf})});
        return [r.status, (await r.json()).error.message];
    }"""
    csrf = page.get_attribute("form.signout input[name=csrf]", "value")
    assert page.evaluate(post, csrf) == [403, "this key lacks the 'session' scope"]
    status, message = page.evaluate(post, "forged")
    assert status == 403 and "security token" in message


def readme_block(name: str) -> str:
    """The code block between README's `<!-- {name}:start -->` and `<!-- {name}:end -->`, as written."""
    found = re.search(rf"<!-- {name}:start -->\n```\w+\n(.*?)```\n<!-- {name}:end -->", README.read_text(), re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def readme_site(service: Service, tmp_path: Path) -> Iterator[str]:
    """README's backend and page, written out as a user would copy them, the backend run with a key of
    scope `session` only; its URL."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "server.py").write_text(readme_block("live-example-backend"))
    (site / "live.html").write_text(readme_block("live-example"))
    port = free_port()
    env = {"EXPRESSION_SERVICE_URL": service.url, "PORT": str(port), "PATH": "/usr/bin:/bin",
           "EXPRESSION_API_KEY": sync_key(service.database_url, ["session"], name="web-live")}  # fmt: skip
    backend = subprocess.Popen([sys.executable, "server.py"], cwd=site, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert backend.poll() is None, (backend.stderr.read() if backend.stderr else b"").decode()
                assert time.monotonic() < deadline, "README's backend did not start listening"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        backend.terminate()
        backend.wait(timeout=10)


def test_readme_example_streams_the_microphone_and_prints_measurements(
    service: Service, media_browser: Any, readme_site: str
) -> None:
    page = media_browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(readme_site + "/")
    page.click("#start")
    page.wait_for_function("/session job \\S+\\n/.test(document.getElementById('out').textContent)")
    # Two measurements printed as they arrive: the time, then the strongest expressions with probabilities.
    measured = r"^\d+\.\d s: "
    page.wait_for_function(
        "re => document.getElementById('out').textContent.split('\\n').filter(l => new RegExp(re).test(l)).length >= 2",
        arg=measured, timeout=15_000,
    )  # fmt: skip
    page.click("#stop")
    page.wait_for_function("/closed 1000/.test(document.getElementById('out').textContent)", timeout=20_000)
    lines = page.inner_text("#out").splitlines()
    job_id = lines[0].removeprefix("session job ")
    printed = [line for line in lines if re.match(measured, line)]
    assert lines[-1].startswith("closed 1000")
    # The strongest three at most: Hume lists only what it judged present, which may be fewer, or none.
    assert re.fullmatch(r"\d+\.\d s: ([^,]+ 0\.\d\d(, [^,]+ 0\.\d\d){0,2}|none judged present)", printed[0]), printed[0]
    job = job_when_final(service, job_id)
    assert job["status"] == "completed", job
    assert job["metadata"] == {"user": "demo"}
    stored = predictions(service, job_id)
    assert len(stored) == job["num_predictions"] == len(printed) >= 2
    assert not [line for line in lines if line.startswith("error")]
    assert errors == []
