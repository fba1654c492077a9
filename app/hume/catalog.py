"""The Hume APIs this service knows, written once: which are live and which Hume retired (with the date),
which of Hume's two hosts serves each (the setting that moves it and its default), and which of our routes
and commands use it. The `make run` banner, `python -m app status`, `python -m app hume check`, the
retirement errors and README's table "What Hume serves today" are all rendered from `CATALOG`.

Source for every row: HUME.md's status block of 2026-12-04 (and the sections each row names).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from app.config import HUME_CLOUD_URL, HUME_VOICE_URL, Settings

AS_OF = date(2026, 12, 4)
"""The day HUME.md's status block describes."""

State = Literal["live", "retired", "undocumented"]
HostName = Literal["cloud", "voice"]


@dataclass(frozen=True)
class Host:
    name: HostName
    setting: str
    """The variable that points it elsewhere (HUME_BASE_URL moves both)."""
    default: str

    def url(self, settings: Settings) -> str:
        return settings.cloud_url if self.name == "cloud" else settings.hume_url

    def is_hume(self, settings: Settings) -> bool:
        """Calls would reach Hume itself (not the emulator or a compatible server)."""
        return self.url(settings) == self.default


# HUME-V1-FACTS §1: v1 (and Audio Decisions) on the cloud host; tokens, TTS, EVI and batch on the voice-era host.
CLOUD = Host("cloud", "HUME_CLOUD_URL", HUME_CLOUD_URL)
VOICE = Host("voice", "HUME_VOICE_URL", HUME_VOICE_URL)


@dataclass(frozen=True)
class HumeApi:
    key: str
    name: str
    state: State
    since: date
    """live: since when; retired: the day it ended; undocumented: since when the docs are silent."""
    host: Host
    uses: tuple[str, ...]
    """Our routes and commands that use it; empty: not used yet."""
    here: str
    """What this service does with it now, in a few words."""
    source: str
    instead: str = ""
    """What to use now, for a retired API."""

    @property
    def status(self) -> str:
        """ "live since 2026-10-06", "retired 2026-11-13", "undocumented since 2026-11-13"."""
        return {"live": "live since", "retired": "retired", "undocumented": "undocumented since"}[self.state] + (
            f" {self.since.isoformat()}"
        )

    def retired_message(self) -> str:
        """One line for an answer or a command that will not call it."""
        instead = f" {self.instead}." if self.instead else ""
        return (
            f"Hume retired its {self.name} API on {self.since.isoformat()} ({self.source}); {self.here}.{instead} "
            f"Against a compatible server (such as the emulator: set {self.host.setting} or HUME_BASE_URL) it works."
        )


V1 = HumeApi(
    "v1", "Expression Measurement v1", "live", date(2026, 10, 6), CLOUD,
    ("the v1 job backend (POST /v1/jobs)", "python -m app hume check"),
    "limited release: access by request to Hume's sales",
    "HUME.md status block; HUME-V1-FACTS §1-8",
)  # fmt: skip
AUDIO_DECISIONS = HumeApi(
    "audio_decisions", "Audio Decisions", "live", date(2026, 11, 2), CLOUD,
    ("decision jobs (POST /v1/jobs with decisions)", "python -m app decisions ask",
     "python -m app hume check --decisions"),
    "questions about recordings answered per window, stored with Hume's raw answer",
    "dev.hume.ai/audio-decisions/changelog",
)  # fmt: skip
BATCH = HumeApi(
    "batch", "batch Expression Measurement (v0)", "retired", date(2026, 6, 15), VOICE,
    ("the batch job backend (POST /v1/jobs)", "POST /v1/webhooks/hume/batch"),
    "batch jobs end rejected without calling Hume",
    "HUME.md §0: June 14, 2026 was the last day to use the API, sunset 6/15/2026",
    'Submit with "backend": "v1" (HUME_BACKEND=v1, the default with a Hume key) for Hume\'s live v1 API',
)  # fmt: skip
TTS = HumeApi(
    "tts", "TTS", "retired", date(2026, 11, 13), VOICE, ("POST /v1/tts",),
    "POST /v1/tts serves cached texts only",
    "dev.hume.ai/intro: access ends November 13, 2026",
)  # fmt: skip
EVI = HumeApi(
    "evi", "EVI", "retired", date(2026, 11, 13), VOICE,
    ("POST /v1/webhooks/hume/evi", "python -m app evi-backfill", "stored chats (GET /v1/jobs?kind=evi_chat)"),
    "stored chats stay queryable (maybe the only copy: Hume deleted account data)",
    "dev.hume.ai/intro: access ends November 13, 2026; account data deleted after",
)  # fmt: skip
TOKENS = HumeApi(
    "tokens", "access tokens (/oauth2-cc/token)", "undocumented", date(2026, 11, 13), VOICE, ("GET /api/hume/auth",),
    "GET /api/hume/auth answers what Hume answers; a 404/410 says Hume no longer serves tokens there",
    "HUME-V1-FACTS §1: which endpoint issues v1 tokens is undocumented",
)  # fmt: skip

CATALOG: tuple[HumeApi, ...] = (V1, AUDIO_DECISIONS, BATCH, TTS, EVI, TOKENS)


def retired_at_hume(api: HumeApi, settings: Settings) -> bool:
    """A retired API whose calls would reach Hume itself: we must not call it (a compatible server still
    serves it: the emulator, or whatever HUME_VOICE_URL/HUME_BASE_URL names)."""
    return api.state == "retired" and api.host.is_hume(settings)


def _uses(api: HumeApi) -> str:
    return "; ".join(api.uses) if api.uses else "not used yet"


def markdown_table() -> str:
    """README's table "What Hume serves today" (a test compares the two)."""
    rows = [
        f"## What Hume serves today ({AS_OF.isoformat()})",
        "",
        "| Hume API | state | host (setting, default) | used here by | what this service does against Hume |",
        "|---|---|---|---|---|",
    ]
    for api in CATALOG:
        host = f"`{api.host.setting}`, `{api.host.default}`"
        uses = "; ".join(f"`{use}`" if use.startswith(("POST", "GET", "python")) else use for use in api.uses)
        rows.append(f"| {api.name} | {api.status} | {host} | {uses or 'not used yet'} | {api.here} |")
    return "\n".join(rows)


README_MARKERS = ("<!-- hume-catalog -->", "<!-- /hume-catalog -->")
"""README's table sits between these (tests/unit/test_hume_catalog.py compares it with `markdown_table()`)."""


def describe(settings: Settings) -> list[str]:
    """One line per API for this configuration: its state at Hume, the URL our calls go to, what we do."""
    width = max(len(api.name) for api in CATALOG)
    state_width = max(len(api.status) for api in CATALOG)
    lines = []
    for api in CATALOG:
        url = api.host.url(settings)
        if retired_at_hume(api, settings):
            where = f"not called: {api.here}"
        elif api.state == "retired":
            where = f"{url} (retired at Hume; served here by a stand-in)"
        else:
            where = url
        lines.append(f"{api.name:<{width}}  {api.status:<{state_width}}  {where}")
    return lines


def hosts_in_use(settings: Settings) -> str:
    """Where our calls go, for the banner: both hosts and the setting that moves each."""
    return " and ".join(f"{host.url(settings)} ({host.setting})" for host in (CLOUD, VOICE))
