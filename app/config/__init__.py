"""Settings: one frozen, validated object, read from the environment (and a `.env` file) once, passed down
explicitly. Each setting's default is written once, here; its variable is its name in upper case."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import DotEnvSettingsSource

from app.config.billing import BillingSettings
from app.config.sources import MappingSource, SettingsError, one_line, sqlalchemy_url

LogFormat = Literal["console", "json"]
Backend = Literal["batch", "v1"]
BACKENDS: tuple[Backend, ...] = ("batch", "v1")

# The built-in emulator's development credentials: not secrets, they only open the local emulator.
EMULATOR_API_KEY = "emulator-dev-key"
EMULATOR_SECRET_KEY = "emulator-dev-secret"  # noqa: S105
# Hume's two hosts (HUME-V1-FACTS §1; HUME.md's status block of 2026-12-04): the cloud host serves Expression
# Measurement v1 (and Audio Decisions); the voice-era host served tokens, TTS, EVI and batch, all retired now.
HUME_CLOUD_URL = "https://api.cloud.hume.ai"
HUME_VOICE_URL = "https://api.hume.ai"
ENV_FILE = Path(".env")


class Settings(BillingSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_ignore_empty=True, hide_input_in_errors=False)

    database_url: str | None = None
    """Postgres URL; None means the embedded server (`make run` only)."""
    hume_api_key: str | None = Field(default=None, repr=False)
    hume_secret_key: str | None = Field(default=None, repr=False)
    hume_cloud_api_key: str | None = Field(default=None, repr=False)
    """The key for the cloud APIs (v1), if Hume's Platform issued one apart from HUME_API_KEY (the fallback)."""
    hume_cloud_url: str | None = None
    """Where v1 calls go; None: HUME_BASE_URL, else Hume's cloud host (HUME_CLOUD_URL above)."""
    hume_voice_url: str | None = None
    """Where token, TTS, EVI and batch calls go; None: HUME_BASE_URL, else Hume's voice-era host."""
    hume_base_url: str | None = None
    """One Hume-compatible server for both hosts (HUME_CLOUD_URL and HUME_VOICE_URL each win over it).
    With no URL and no key set, the built-in emulator serves both."""
    public_base_url: str | None = None
    """How Hume reaches us, for callback URLs; defaults to http://HOST:PORT."""
    dashboard_secret: str | None = Field(default=None, repr=False, min_length=16)
    """Signs dashboard session cookies; every `serve` process must share it (required outside development
    and with WEB_CONCURRENCY above 1). None: each process draws its own, so sessions end with the process."""
    hume_webhook_signing_key: str | None = Field(default=None, repr=False)
    hume_webhook_previous_signing_key: str | None = Field(default=None, repr=False)
    hume_webhook_tolerance_s: float = 300.0
    environment: str = "development"
    """Not `development` (the image sets `production`): `serve`/`worker` need `deployment_gaps` filled."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "INFO"
    log_format: LogFormat = "console"
    """Default: console when ENVIRONMENT is development (or unset) and stdout is a terminal, else json (from_env)."""
    run_worker: bool = True
    """Run the queue worker inside the server; off for deployments with `python -m app worker`."""
    worker_concurrency: int = Field(default=4, ge=1)
    """Tasks a worker process runs at once, shared among its fetch loops."""
    queue_retention_h: int = Field(default=168, ge=1)
    """Finished queue tasks are deleted this long after they ended (checked hourly). What the service
    promises is kept elsewhere: inbox events with their errors, jobs, and the webhook delivery log."""
    inbox_body_retention_h: int = Field(default=720, ge=0)
    """Bodies of processed inbox events (done or ignored) are emptied this long after processing (a batch
    callback carries megabytes of predictions, already ingested); the rows stay. 0 keeps bodies for good."""
    webhook_log_retention_h: int = Field(default=2160, ge=0)
    """Our webhooks' ended messages (delivered or failed) and their attempts are deleted this long after the
    message was created (90 days); 0 keeps them. Pending messages are never deleted."""
    prediction_retention_days: int = Field(default=0, ge=0)
    """Predictions are dropped a UTC month at a time once the whole month is older than this (so kept this long
    to a month more); 0 keeps them for good. Summaries stay. `python -m app tenant-retention TENANT --days N`
    overrides it per tenant."""
    worker_fetch_loops: int = Field(default=2, ge=1)
    """procrastinate workers in one process (at most WORKER_CONCURRENCY), each with its own fetch loop and a
    share of the tasks: one loop takes one task per round trip, which held a process to about 600 short
    tasks (webhook deliveries) a second."""
    web_concurrency: int = Field(default=1, ge=1)
    """uvicorn processes `serve` runs on one socket (about one per core); each holds its own pools."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Where a `worker` process serves /metrics and /healthz; None: no metrics server."""
    prometheus_multiproc_dir: str | None = None
    """Where several `serve` processes pool their metrics (the client reads the process environment)."""
    db_pool_size: int | None = Field(default=None, ge=1)
    """SQLAlchemy pool per process (as many again may overflow); None: 10 for `serve`, 2 for `worker`."""
    max_body_bytes: int = Field(default=1 << 20, ge=1)
    """Request body cap for the API."""
    max_webhook_body_bytes: int = Field(default=256 << 20, ge=1)
    """Callback bodies carry predictions: a one-hour video is tens of MB."""
    max_evi_body_bytes: int = Field(default=1 << 20, ge=1)
    """EVI webhook bodies: a chat event is a few kB; anything past this is refused unread."""
    body_read_timeout_s: float = Field(default=30.0, gt=0)
    """A request body must arrive within this long (slow senders are cut off with 408)."""
    header_read_timeout_s: float = Field(default=10.0, gt=0)
    """A connection must deliver its request line and headers within this long (slowloris)."""
    limit_concurrency: int = Field(default=512, ge=1)
    """Open connections plus running requests past which uvicorn answers 503 at once."""
    timeout_keep_alive_s: float = Field(default=5.0, gt=0)
    """An idle keep-alive connection is closed after this long."""
    export_connections: int = Field(default=0, ge=0)
    """Pooled connections CSV exports may hold at once (0: 5, a quarter of the pool's 20)."""
    export_statement_timeout_s: float = Field(default=300.0, gt=0)
    """Postgres statement_timeout (and idle-in-transaction timeout) for those long reads."""
    export_write_timeout_s: float = Field(default=30.0, gt=0)
    """A long read whose client accepts no bytes for this long is cut off and its connection returned."""
    reconcile_after_s: float = 600.0
    """A submitted job with no callback after this long is polled."""
    reconcile_interval_s: float = 15.0
    """How often the reconciler runs (it also requeues stalled tasks and orphaned inbox events)."""
    worker_max_attempts: int = Field(default=8, ge=1)
    """Tries of one task before its event is marked dead (visible at /v1/admin/events?state=dead)."""
    worker_retry_base_s: float = 2.0
    worker_retry_cap_s: float = 300.0
    """Exponential backoff between tries: base * 2**attempt, capped; Hume's Retry-After wins if longer."""
    worker_heartbeat_s: float = 5.0
    stalled_after_s: float = 30.0
    """A task whose worker sent no heartbeat for this long (killed, frozen) is run again."""
    hume_requests_per_minute: int = Field(default=600, ge=2)
    """Hume's limit per organization ("each organization can make up to 600 requests per minute", Hume's
    limits-and-errors page, HUME-V1-FACTS §4): every process of the service together stays under it, paced
    through a budget in Postgres; lower it when other systems share the organization."""
    hume_rate_burst: int = Field(default=10, ge=1)
    """Requests sent at once before pacing starts; the pace leaves room for them inside any minute."""
    hume_max_retries: int = Field(default=2, ge=0)
    """The SDK's own quick retries of a Hume 429/5xx (honouring Retry-After) before the worker's backoff."""
    hume_tenant_daily_seconds: int = Field(default=36_000, ge=0)
    """Hume-metered seconds (what Hume bills, HUME-V1-FACTS §6) each tenant's v1 jobs may spend per UTC day;
    0: no limit. The default, 10 hours, passes a legitimate three-hour recording with audio and faces (about
    6 h billed: 3 h of audio plus 3 frames/s at 1/3 s each) and bounds what one tenant's key can spend in a
    day. `python -m app tenant-budget TENANT --seconds N` overrides it per tenant."""
    hume_tenant_daily_decision_tokens: int | None = Field(default=None, ge=0)
    """Audio Decisions input tokens (what Hume bills decisions by, D/billing) each tenant's decision jobs may
    spend per UTC day; unset or 0: no limit (the day's tokens are still counted). Each window's tokens are
    reserved before it is sent (Hume's free estimate for its length), under the same rule as the seconds.
    `python -m app tenant-budget TENANT --decision-tokens N` overrides it per tenant."""
    session_token_ttl_s: int = Field(default=60, ge=1, le=3600)
    """How long a token from POST /v1/session-tokens may open a live session (once). Short: it travels in a
    browser's WebSocket URL, where proxies and logs may see it."""
    session_flush_ms: int = Field(default=1000, ge=10, le=60_000)
    """A live session's measurements reach the store within about this long (and at its end): a process's
    sessions are stored together when their oldest measurement has waited this long, or sooner when 1024 wait.
    1 s, not 250 ms: a tick's fixed cost is shared by 4x the rows (bench live_ingest, 200 audio sessions:
    6.6-8.1x an upload's CPU a row at 250 ms, 3.3-4.1x at 1 s); the live page draws from the WebSocket, not
    the store."""
    session_stale_s: float = Field(default=60.0, gt=0)
    """A live session whose relay wrote no heartbeat (every 10 s, with
    its measurements) for this long is ended failed by the reconciler: its relay's process is gone."""
    emulator_port: int | None = Field(default=None, ge=0, le=65535)
    """The built-in emulator's port for Hume's voice-era host; None means PORT + 1 (so a second `make run` on
    another PORT just works)."""
    emulator_cloud_port: int | None = Field(default=None, ge=0, le=65535)
    """The built-in emulator's port for Hume's cloud host; None means EMULATOR_PORT + 1."""
    cors_allow_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Browser origins allowed to call the API (CORS_ALLOW_ORIGINS, comma-separated; "*" for any)."""
    hume_token_refresh_margin_s: float = 300.0
    """Fetch the next Hume access token this long before the current one expires."""
    hume_tokens_enabled: bool = True
    """GET /api/hume/auth hands keys with the `token` scope a Hume access token. There is one per deployment
    (it opens the whole Hume account, whichever tenant asks); false turns the route off (404
    tokens_disabled). On by default: it works only where HUME_SECRET_KEY is set, which is for nothing else."""
    auth_failure_limit: int = Field(default=30, ge=0)
    """Wrong API keys (and dashboard sign-ins) one client address may send per AUTH_FAILURE_WINDOW_S, per
    process, before it gets 429 with Retry-After; 0 turns the throttle off."""
    auth_failure_window_s: float = Field(default=60.0, gt=0)
    webhook_pool_size: int = Field(default=10, ge=1)
    """Connections of the webhook acknowledgement path (its own small pool, so exports never starve it)."""
    tts_cache_max_bytes: int = 512 << 20
    """Size bound of the TTS cache in Postgres; least recently used entries are evicted past it."""
    allow_private_hosts: str | None = None
    """Comma-separated hosts/CIDRs outbound requests may reach although private or loopback (development
    and tests); media fetching and our outbound webhooks share it."""
    webhook_retry_schedule_s: Annotated[tuple[float, ...], NoDecode] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    """The wait before each attempt of our outbound webhooks (the first is the send itself), Standard
    Webhooks' schedule; each wait after the first gets +-10 % jitter."""
    webhook_timeout_s: float = 10.0
    """A receiver that has not answered within this long counts as failed (and is retried)."""
    webhook_in_flight: int = Field(default=32, ge=1)
    """POSTs one delivery task has under way to its endpoint at once (a task sends an endpoint's due messages
    several at a time; 1 sends them one after another). bench_outbound's receiver (a bare uvicorn app) took
    500 messages at 0.76x the bare aiohttp loop's pace with 16, 0.84x with 32 and 0.99x with 64 (in-process
    A/B, alternating rounds): 32 is most of the gain at what a receiver behind any load balancer takes."""
    webhook_disable_after_s: float = 5 * 86400.0
    """An endpoint whose every attempt failed for this long is disabled."""
    hume_backend: Backend | None = None
    """The backend of a job that names none; None: `v1` with a Hume key, `batch` on the built-in emulator."""
    media_max_bytes: int = Field(default=2 << 30, ge=1)
    """The largest medium the v1 backend downloads, counted while streaming."""
    media_fetch_read_timeout_s: float = 30.0
    """The longest silence while downloading a medium."""
    media_fetch_timeout_s: float = 900.0
    """A whole download, redirects included."""
    v1_face_fps: float = Field(default=3.0, gt=0, le=3)
    """Frames per second sent to Hume v1 for `face` when a job names none (the batch face model's rate); at
    most 3, the cap a job's own `face.fps` has (Hume bills 1/3 s per frame, HUME-V1-FACTS §6)."""
    v1_frames_per_request: int = Field(default=100, ge=1)
    """Images per v1 video request (each request also stays under 24 MB)."""
    v1_audio_chunk_bytes: int = Field(default=24_000_000, ge=1_000)
    """The largest WAV per v1 audio request (Hume takes 25 MB a request)."""
    media_max_pixels: int = Field(default=7680 * 4320, ge=64 * 64)
    """The largest decoded picture (width x height) of a video source, checked in the file's headers and by the
    decoder itself before a frame is decoded. 8K UHD (33,177,600 px): what recording devices make today;
    Hume's own limit is 3840x2160 (HUME-V1-FACTS §4) and frames are scaled down to it."""
    media_max_frame_bytes: int = Field(default=7680 * 4320 * 4, ge=64 * 64)
    """The largest decoded picture in bytes (its pixel format's bytes per pixel times its pixels): 8-bit RGBA
    at 8K (132,710,400 B); 16-bit-per-channel formats at 8K are refused."""
    media_max_duration_s: float = Field(default=4 * 3600.0, gt=0)
    """The longest source measured, checked against the duration its header declares (refused before any
    upload) and while decoding (stopped there; what was measured is kept). Hume bills audio seconds, silence
    included (HUME-V1-FACTS §6): this also bounds what one source's silence costs."""
    media_max_frames: int = Field(default=43_200, ge=1)
    """The most frames of one video source sent to Hume: 4 h at 3 fps. Hume bills 1/3 s per frame
    (HUME-V1-FACTS §6), so the default bills at most 4 h a source."""
    media_decode_concurrency: int = Field(default=2, ge=1)
    """Media a process decodes at once (the others wait): each decode holds up to a few frames of
    MEDIA_MAX_FRAME_BYTES, so this multiplies a process's peak memory. Two keeps two cores busy."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword construction is exact (tests, embedding): only `from_env` reads the environment.
        return (init_settings,)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("webhook_retry_schedule_s", mode="before")
    @classmethod
    def _split_schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                waits = tuple(float(part) for part in value.split(","))
            except ValueError:
                raise ValueError(f"must be comma-separated seconds, got {value!r}") from None
            if any(w < 0 for w in waits):
                raise ValueError(f"must not contain negative waits, got {value!r}")
            return waits
        return value

    @field_validator("hume_rate_burst")
    @classmethod
    def _burst_under_rate(cls, value: int, info: ValidationInfo) -> int:
        per_minute = info.data.get("hume_requests_per_minute")
        if per_minute is not None and value >= per_minute:
            raise ValueError(f"must be below HUME_REQUESTS_PER_MINUTE ({per_minute}), got {value}")
        return value

    @field_validator("hume_backend", mode="before")
    @classmethod
    def _backend_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                sqlalchemy_url(value)
            except SettingsError as exc:
                raise ValueError(str(exc).removeprefix("DATABASE_URL ")) from None
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = ENV_FILE) -> Settings:
        """The process environment over `.env` (when `environ` is None), or exactly `environ`."""
        if environ is None:
            from_file = DotEnvSettingsSource(cls, env_file=env_file).env_vars if env_file else {}
            env: dict[str, str] = {k: v for k, v in from_file.items() if v is not None}
            env.update({k.lower(): v for k, v in os.environ.items()})
        else:
            env = {k.lower(): v for k, v in environ.items()}
        if not env.get("log_format", "").strip():
            # Readable lines for a person at a terminal; JSON for files, pipes and collectors (and ~3x cheaper).
            development = env.get("environment", "development").strip().lower() in ("", "development")
            env["log_format"] = "console" if development and sys.stdout.isatty() else "json"
        try:
            return cls(**MappingSource(cls, env)())
        except ValidationError as exc:
            raise SettingsError(one_line(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated like the original."""
        try:
            return type(self)(**{**self.model_dump(), **changes})
        except ValidationError as exc:
            raise SettingsError(one_line(exc)) from None

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def deployment_gaps(self, *, serving: bool = False) -> list[str]:
        """Settings a deployment must give that are missing; in development defaults stand in for them.
        `serving`: the API and dashboard too, whose processes must share DASHBOARD_SECRET (one process may
        draw its own, in development)."""
        shared_secret = serving and self.dashboard_secret is None and (not self.development or self.web_concurrency > 1)
        secret = ["DASHBOARD_SECRET (the dashboard's processes must share one)"] if shared_secret else []
        if self.development:
            return secret
        required = {"DATABASE_URL": self.database_url, "PUBLIC_BASE_URL": self.public_base_url}
        gaps = [name for name, value in required.items() if value is None]
        hume = ["HUME_API_KEY (or HUME_BASE_URL for a Hume-compatible server)"] if self.uses_emulator else []
        return gaps + hume + secret

    @property
    def uses_emulator(self) -> bool:
        """No Hume key and no Hume URL: the built-in emulator stands in for both of Hume's hosts."""
        configured = (self.hume_api_key, self.hume_cloud_api_key, self.hume_base_url, self.hume_cloud_url,
                      self.hume_voice_url)  # fmt: skip
        return all(value is None for value in configured)

    @property
    def callback_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def built_in_emulator_port(self) -> int:
        return self.emulator_port if self.emulator_port is not None else self.port + 1

    @property
    def built_in_emulator_cloud_port(self) -> int:
        return self.emulator_cloud_port if self.emulator_cloud_port is not None else self.built_in_emulator_port + 1

    @property
    def emulator_url(self) -> str:
        """The built-in emulator's stand-in for Hume's voice-era host (and its control routes)."""
        return f"http://127.0.0.1:{self.built_in_emulator_port}"

    @property
    def emulator_cloud_url(self) -> str:
        """The built-in emulator's stand-in for Hume's cloud host."""
        return f"http://127.0.0.1:{self.built_in_emulator_cloud_port}"

    @property
    def hume_url(self) -> str:
        """Where voice-era calls go (tokens, TTS, EVI, batch): the built-in emulator, HUME_VOICE_URL,
        HUME_BASE_URL, or Hume's voice-era host."""
        if self.uses_emulator:
            return self.emulator_url
        return (self.hume_voice_url or self.hume_base_url or HUME_VOICE_URL).rstrip("/")

    @property
    def cloud_url(self) -> str:
        """Where v1 calls go: the built-in emulator, HUME_CLOUD_URL, HUME_BASE_URL, or Hume's cloud host."""
        if self.uses_emulator:
            return self.emulator_cloud_url
        return (self.hume_cloud_url or self.hume_base_url or HUME_CLOUD_URL).rstrip("/")

    @property
    def voice_host_is_hume(self) -> bool:
        """Voice-era calls would reach Hume itself, whose voice-era APIs are retired (not a compatible server)."""
        return self.hume_url == HUME_VOICE_URL

    @property
    def hume_key(self) -> str:
        return EMULATOR_API_KEY if self.uses_emulator else (self.hume_api_key or "")

    @property
    def cloud_key(self) -> str:
        """The key v1 calls carry: HUME_CLOUD_API_KEY, else HUME_API_KEY."""
        return EMULATOR_API_KEY if self.uses_emulator else (self.hume_cloud_api_key or self.hume_api_key or "")

    @property
    def hume_secret(self) -> str | None:
        return EMULATOR_SECRET_KEY if self.uses_emulator else self.hume_secret_key

    @property
    def webhook_signing_keys(self) -> tuple[str, ...]:
        """Current key first; the previous one stays valid during a rotation. With the built-in emulator
        and no key set, the key it signs with, so `make run` ingests the emulator's chats out of the box."""
        keys = [self.hume_webhook_signing_key or self.hume_api_key, self.hume_webhook_previous_signing_key]
        configured = tuple(k for k in keys if k)
        if configured or not self.uses_emulator:
            return configured
        return (EMULATOR_API_KEY,)

    @property
    def outbound_allow_list(self) -> str | None:
        """ALLOW_PRIVATE_HOSTS, or, under `make run` with the built-in emulator and nothing set, this
        machine's loopback: `python -m app webhooks listen` and v1 jobs on the emulator's sample media
        (/_emulator/media/...) then work out of the box."""
        if self.allow_private_hosts is None and self.uses_emulator:
            return "127.0.0.1,::1,localhost"
        return self.allow_private_hosts

    @property
    def default_backend(self) -> Backend:
        """HUME_BACKEND if set; else `batch` on the built-in emulator (no Hume settings at all) and `v1` with
        any Hume setting: Hume's batch API ended 2026-06-15 (HUME.md §0). Which URLs are set never decides."""
        if self.hume_backend is not None:
            return self.hume_backend
        return "batch" if self.uses_emulator else "v1"
