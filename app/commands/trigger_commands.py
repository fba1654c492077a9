"""`python -m app trigger ...`: fire one event of each kind at the running service and its emulator over
HTTP (as `stripe trigger` does), then say what happened. Nothing here touches the database."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
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


def add_parsers(sub: Any) -> None:
    trigger = sub.add_parser(
        "trigger", help="fire an event at the running service (batch-job, evi-chat, tts) and show what happened",
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
