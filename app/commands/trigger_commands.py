"""`python -m app trigger ...`: fire one event of each kind at the running service and its emulator over
HTTP (as `stripe trigger` does), then say what happened. Nothing here touches the database."""

from __future__ import annotations

import argparse
import array
import contextlib
import http.server
import io
import json
import math
import os
import sys
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.commands import startup_banner
from app.commands.errors import FAILED, CommandError
from app.config import Settings
from app.core.job_status import FINAL


@dataclass(frozen=True)
class Target:
    api: str
    emulator: str | None
    key: str


def target(args: argparse.Namespace, settings: Settings) -> Target:
    """--url/--emulator-url/--key, else what the last `make run` here saved, else the settings (and $KEY)."""
    banner = startup_banner.load()
    api = args.url or (banner.api_url if banner else f"http://{settings.host}:{settings.port}")
    emulator = args.emulator_url or (banner.emulator_url if banner else settings.emulator_url)
    key = args.key or os.environ.get("KEY") or (banner.key if banner else None)
    if not key:
        raise CommandError("no API key: pass --key, export KEY=... (see `python -m app status`), or run `make run`")
    return Target(api.rstrip("/"), emulator.rstrip("/") if emulator else None, key)


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TransportError:
        where = httpx.URL(url)
        raise CommandError(
            f"nothing answers at {where.scheme}://{where.host}:{where.port}: is the service running (`make run`)?",
            FAILED,
        ) from None
    if response.status_code >= 400:
        try:
            body = response.json()
            message = body["error"]["message"] if "error" in body and isinstance(body["error"], dict) else body
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise CommandError(f"{method} {httpx.URL(url).path} answered {response.status_code}: {message}", FAILED)
    return response


def _wait(client: httpx.Client, t: Target, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = _call(client, "GET", f"{t.api}/v1/jobs/{job_id}").json()
        if job["status"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.25)


def _outcome(job: dict[str, Any]) -> str:
    line = f"Job {job['id']} is {job['status']}: {job['num_predictions']} predictions"
    if job.get("error"):
        line += f"; error: {job['error']['message']}"
    return line


def cmd_batch_job(args: argparse.Namespace, settings: Settings) -> int:
    t = target(args, settings)
    markers = f"duration={args.duration:g}" + ("&fail" if args.fail else "")
    markers += "&drop_callback" if args.drop_callback else ""
    url = f"https://example.com/trigger-{uuid.uuid4().hex[:8]}.mp4#{markers}"
    with httpx.Client(headers={"Authorization": f"Bearer {t.key}"}, timeout=30) as client:
        job = _call(client, "POST", f"{t.api}/v1/jobs", json={"urls": [url]}).json()
        print(f"Submitted {url} as job {job['id']}", file=sys.stderr, flush=True)
        if args.drop_callback:
            job = _wait(client, t, job["id"], timeout=min(args.timeout, 5))
            print(
                f"Job {job['id']} is {job['status']}; the emulator drops its callback, so the reconciler polls "
                "Hume once RECONCILE_AFTER_S (600 s by default) has passed and completes it",
                file=sys.stderr,
            )
        else:
            job = _wait(client, t, job["id"], timeout=args.timeout)
            print(_outcome(job), file=sys.stderr)
    print(job["id"])
    expected = "failed" if args.fail else "completed"
    return 0 if args.drop_callback or job["status"] == expected else FAILED


def cmd_evi_chat(args: argparse.Namespace, settings: Settings) -> int:
    t = target(args, settings)
    if t.emulator is None:
        raise CommandError("the service runs against real Hume (no built-in emulator): trigger evi-chat needs one")
    with httpx.Client(headers={"Authorization": f"Bearer {t.key}"}, timeout=30) as client:
        chat = _call(client, "POST", f"{t.emulator}/_emulator/evi/chats", json={"turns": args.turns}).json()
        print(f"The emulator held EVI chat {chat['id']} ({args.turns} turns) and sent chat_started and chat_ended "
              "to the service", file=sys.stderr, flush=True)  # fmt: skip
        deadline = time.monotonic() + args.timeout
        params = {"kind": "evi_chat", "hume_id": chat["id"]}
        while True:
            items = _call(client, "GET", f"{t.api}/v1/jobs", params=params).json()["items"]
            if (items and items[0]["status"] in FINAL) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if not items:
            raise CommandError(
                f"no job for chat {chat['id']} after {args.timeout:g} s: does the emulator send webhooks to this "
                "service (EVI webhook URL) with the key it verifies (HUME_WEBHOOK_SIGNING_KEY)?",
                FAILED,
            )
        print(_outcome(items[0]), file=sys.stderr)
    print(items[0]["id"])
    return 0 if items[0]["status"] == "completed" else FAILED


def cmd_tts(args: argparse.Namespace, settings: Settings) -> int:
    t = target(args, settings)
    fmt = Path(args.output).suffix.lstrip(".").lower()
    if fmt not in ("wav", "mp3", "pcm"):
        raise CommandError(f"--output {args.output!r} must end in .wav, .mp3 or .pcm (the audio format)")
    with httpx.Client(headers={"Authorization": f"Bearer {t.key}"}, timeout=60) as client:
        response = _call(client, "POST", f"{t.api}/v1/tts", json={"text": args.text, "format": fmt})
    try:
        Path(args.output).write_bytes(response.content)
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
    cache = response.headers.get("x-cache", "?")
    print(f"Wrote {len(response.content)} bytes of {fmt} audio to {args.output} (cache {cache})")
    return 0


# A question of each primitive, about what the generated recording holds (tone bursts with pauses).
TRIGGER_QUESTIONS: dict[str, Any] = {
    "name": "trigger decisions-job",
    "context": "A generated test recording: tone bursts with pauses between them.",
    "questions": {
        "speaks": {"type": "noul", "instructions": "Does someone speak?"},
        "pitch": {"type": "score", "instructions": "How high is the voice?", "criteria": ["low", "medium", "high"]},
        "mood": {"type": "choice", "instructions": "How does the speaker sound?",
                 "criteria": {"calm": "calm and even", "tense": "tense or agitated"}},
        "talking": {"type": "span", "instructions": "When does someone speak?"},
    },
}  # fmt: skip


def tone_bursts_wav(seconds: float, rate: int = 16_000) -> bytes:
    """A 16-bit mono WAV of 200 Hz tone bursts (4 s of sound, 1 s of silence, repeated), made with the stdlib."""
    period = rate // 200
    wave_ = array.array("h", (6000 if i < period // 2 else -6000 for i in range(period)))
    second_of_tone = (wave_ * (rate // period)).tobytes()
    second_of_silence = bytes(rate * 2)
    pcm = b"".join(second_of_silence if s % 5 == 4 else second_of_tone for s in range(math.ceil(seconds)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm[: int(seconds * rate) * 2])
    return out.getvalue()


@contextlib.contextmanager
def served(data: bytes, name: str) -> Iterator[str]:
    """`data` at http://127.0.0.1:PORT/name from a thread of this process, for as long as the block runs."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != f"/{name}":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
    finally:
        server.shutdown()
        server.server_close()


def _answer_text(a: dict[str, Any]) -> str:
    if a["primitive"] == "noul":
        return "?" if a["share"] is None else f"{a['share']:.2f} yes"
    if a["primitive"] == "choice":
        return f"{a['choice']}" + ("" if a["confidence"] is None else f" ({a['confidence']:.2f})")
    if a["primitive"] == "score":
        return "?" if a["score"] is None else f"level {a['score']:.2f}"
    spans = a["spans"] or []
    base = a["window_start_ms"]
    return ", ".join(
        f"{_clock(base + s['start_ms'])}-{'?' if s.get('end_ms') is None else _clock(base + s['end_ms'])}"
        for s in spans
    ) or "none"  # fmt: skip


def _clock(ms: int) -> str:
    return f"{ms // 60_000}:{ms // 1000 % 60:02d}.{ms // 100 % 10}"


def _answers(client: httpx.Client, t: Target, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = _call(client, "GET", f"{t.api}/v1/jobs/{job_id}/answers", params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def cmd_decisions_job(args: argparse.Namespace, settings: Settings) -> int:
    t = target(args, settings)
    with (
        httpx.Client(headers={"Authorization": f"Bearer {t.key}"}, timeout=60) as client,
        contextlib.ExitStack() as stack,
    ):
        set_id = args.question_set
        if set_id is None:
            created = _call(client, "POST", f"{t.api}/v1/question-sets", json=TRIGGER_QUESTIONS).json()
            set_id = created["id"]
            print(f"Made question set {set_id} ({', '.join(TRIGGER_QUESTIONS['questions'])})", file=sys.stderr)
        url = args.media_url or stack.enter_context(served(tone_bursts_wav(args.duration), "decisions-trigger.wav"))
        body = {"urls": [url], "decisions": {"question_set": set_id, "window_s": args.window_s}}
        job = _call(client, "POST", f"{t.api}/v1/jobs", json=body).json()
        print(f"Submitted {url} as job {job['id']} ({args.window_s} s windows)", file=sys.stderr, flush=True)
        job = _wait(client, t, job["id"], timeout=args.timeout)
        answers = _answers(client, t, job["id"]) if job["status"] in FINAL else []
    if args.json:
        print(json.dumps({"job": job, "answers": answers}, indent=2))
    else:
        for source in ((job.get("details") or {}).get("decisions") or {}).get("sources") or []:
            if source.get("error"):
                print(f"source {source['source']}: {source['error']['code']}: {source['error']['message']}")
        for a in answers:
            window = f"{_clock(a['window_start_ms'])}-{_clock(a['window_end_ms'])}"
            print(f"source {a['source_index']} window {a['window_index']} {window}  "
                  f"{a['question_id']} ({a['primitive']}): {_answer_text(a)}")  # fmt: skip
    print(f"Job {job['id']} is {job['status']}: {len(answers)} answers, {job['num_errors']} errors"
          + (f"; error: {job['error']['message']}" if job.get("error") else ""), file=sys.stderr)  # fmt: skip
    print(job["id"])
    return 0 if job["status"] == "completed" and job["num_errors"] == 0 else FAILED


def add_parsers(sub: Any) -> None:
    trigger = sub.add_parser(
        "trigger", help="fire an event at the running service (batch-job, evi-chat, tts, decisions-job) and show "
        "what happened",
        description="Fire one event at the running service and its emulator over HTTP, then print what happened "
        "(the job id alone on the last line of stdout).",
    )  # fmt: skip
    kinds = trigger.add_subparsers(dest="event", required=True, metavar="EVENT")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the service (default: the last `make run` here, else http://HOST:PORT)")
    common.add_argument("--emulator-url", help="the Hume emulator (default: the last `make run` here)")
    common.add_argument("--key", help="an API key (default: $KEY, else the development key of `make run`)")
    common.add_argument("--timeout", type=float, default=30, help="seconds to wait for the job (default 30)")
    batch = kinds.add_parser("batch-job", parents=[common], help="submit a media URL; wait for the callback")
    outcome = batch.add_mutually_exclusive_group()
    outcome.add_argument("--fail", action="store_true", help="the emulator fails the job")
    outcome.add_argument("--drop-callback", action="store_true", help="the emulator never calls back")
    batch.add_argument("--duration", type=float, default=20, help="media length in seconds (default 20)")
    batch.set_defaults(func=cmd_batch_job)
    chat = kinds.add_parser("evi-chat", parents=[common], help="an EVI chat at the emulator, ingested by webhook")
    chat.add_argument("--turns", type=int, default=3, help="user/assistant exchanges (default 3)")
    chat.set_defaults(func=cmd_evi_chat)
    tts = kinds.add_parser("tts", parents=[common], help="synthesize speech through the service into a file")
    tts.add_argument("--text", default="Hello from the Hume expression service.")
    tts.add_argument("--output", default="hello.wav", help="the audio file; .wav, .mp3 or .pcm (default hello.wav)")
    tts.set_defaults(func=cmd_tts)
    decide = kinds.add_parser(
        "decisions-job", parents=[common],
        help="ask a question set about a generated recording served from here; print the answers",
        description="Serve a generated WAV (tone bursts with pauses) from this process, or use --media-url, and "
        "submit a decision job over it; make a question set of one question per primitive unless --question-set "
        "names one; wait and print each window's answers (the service must be allowed to fetch 127.0.0.1: "
        "`make run` on the built-in emulator is, else ALLOW_PRIVATE_HOSTS).",
    )  # fmt: skip
    decide.add_argument("--question-set", help="a question set version's id (default: make one)")
    decide.add_argument("--window-s", type=int, default=30, help="seconds per window (default 30)")
    decide.add_argument("--duration", type=float, default=75, help="the generated recording's seconds (default 75)")
    decide.add_argument("--media-url", help="a recording to ask about instead of the generated one")
    decide.add_argument("--json", action="store_true", help="print the job and its answers as JSON")
    decide.set_defaults(func=cmd_decisions_job)
