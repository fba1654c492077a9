"""Settings: one frozen object, read from the environment once, passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

LogFormat = Literal["console", "json"]

# The built-in emulator's development credentials: not secrets, they only open the local emulator.
EMULATOR_API_KEY = "emulator-dev-key"
EMULATOR_SECRET_KEY = "emulator-dev-secret"  # noqa: S105
PRODUCTION_HUME_URL = "https://api.hume.ai"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _bool(environ: Mapping[str, str], key: str, default: bool) -> bool:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{key} must be a boolean (true/false), got {raw!r}")


def _number(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{key} must be a number, got {raw!r}") from None


def _opt(environ: Mapping[str, str], key: str) -> str | None:
    value = environ.get(key, "").strip()
    return value or None


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy needs the psycopg 3 dialect spelled out; users write plain postgresql:// URLs."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise SettingsError(f"DATABASE_URL must be a postgresql:// URL, got {url.split('://')[0]}://...")


def libpq_url(url: str) -> str:
    """psycopg and procrastinate take the libpq form."""
    return sqlalchemy_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    """Postgres URL; None means the embedded server (development only)."""
    hume_api_key: str | None = field(default=None, repr=False)
    hume_secret_key: str | None = field(default=None, repr=False)
    hume_base_url: str | None = None
    """Hume (or compatible) server; None with no API key means the built-in emulator."""
    public_base_url: str | None = None
    """How Hume reaches us, for callback URLs; defaults to http://127.0.0.1:PORT."""
    hume_webhook_signing_key: str | None = field(default=None, repr=False)
    hume_webhook_previous_signing_key: str | None = field(default=None, repr=False)
    hume_webhook_tolerance_s: float = 300.0
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: LogFormat = "console"
    run_worker: bool = True
    """Run the queue worker inside the server; off for deployments with `python -m app worker`."""
    worker_concurrency: int = 4
    max_body_bytes: int = 1 << 20
    """Request body cap for the API."""
    max_webhook_body_bytes: int = 256 << 20
    """Callback bodies carry predictions: a one-hour video is tens of MB."""
    max_evi_body_bytes: int = 1 << 20
    """EVI webhook bodies: a chat event is a few kB; anything past this is refused unread."""
    body_read_timeout_s: float = 30.0
    """A request body must arrive within this long (slow senders are cut off with 408)."""
    header_read_timeout_s: float = 10.0
    """A connection must deliver its request line and headers within this long (slowloris)."""
    limit_concurrency: int = 512
    """Open connections plus running requests past which uvicorn answers 503 at once."""
    timeout_keep_alive_s: float = 5.0
    """An idle keep-alive connection is closed after this long."""
    export_connections: int = 0
    """Pooled connections CSV exports may hold at once (0: 5, a quarter of the pool's 20)."""
    export_statement_timeout_s: float = 300.0
    """Postgres statement_timeout (and idle-in-transaction timeout) for those long reads."""
    export_write_timeout_s: float = 30.0
    """A long read whose client accepts no bytes for this long is cut off and its connection returned."""
    reconcile_after_s: float = 600.0
    """A submitted job with no callback after this long is polled."""
    reconcile_interval_s: float = 15.0
    """How often the reconciler runs (it also requeues stalled tasks and orphaned inbox events)."""
    worker_max_attempts: int = 8
    """Tries of one task before its event is marked dead (visible at /v1/admin/events?state=dead)."""
    worker_retry_base_s: float = 2.0
    worker_retry_cap_s: float = 300.0
    """Exponential backoff between tries: base * 2**attempt, capped; Hume's Retry-After wins if longer."""
    worker_heartbeat_s: float = 5.0
    stalled_after_s: float = 30.0
    """A task whose worker sent no heartbeat for this long (killed, frozen) is run again."""
    hume_max_retries: int = 2
    """The SDK's own quick retries of a Hume 429/5xx (honouring Retry-After) before the worker's backoff."""
    emulator_port: int = 8001
    cors_allow_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (CORS_ALLOW_ORIGINS, comma-separated; "*" for any)."""
    hume_token_refresh_margin_s: float = 300.0
    """Fetch the next Hume access token this long before the current one expires."""
    tts_cache_max_bytes: int = 512 << 20
    """Size bound of the TTS cache in Postgres; least recently used entries are evicted past it."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        log_format = env.get("LOG_FORMAT", "").strip().lower() or (
            "console" if env.get("ENVIRONMENT", "development") == "development" else "json"
        )
        if log_format not in {"console", "json"}:
            raise SettingsError(f"LOG_FORMAT must be console or json, got {log_format!r}")
        port = int(_number(env, "PORT", 8000))
        settings = cls(
            database_url=_opt(env, "DATABASE_URL"),
            hume_api_key=_opt(env, "HUME_API_KEY"),
            hume_secret_key=_opt(env, "HUME_SECRET_KEY"),
            hume_base_url=_opt(env, "HUME_BASE_URL"),
            public_base_url=_opt(env, "PUBLIC_BASE_URL"),
            hume_webhook_signing_key=_opt(env, "HUME_WEBHOOK_SIGNING_KEY"),
            hume_webhook_previous_signing_key=_opt(env, "HUME_WEBHOOK_PREVIOUS_SIGNING_KEY"),
            hume_webhook_tolerance_s=_number(env, "HUME_WEBHOOK_TOLERANCE_S", 300.0),
            host=env.get("HOST", "127.0.0.1"),
            port=port,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_format=log_format,  # type: ignore[arg-type]
            run_worker=_bool(env, "RUN_WORKER", True),
            worker_concurrency=int(_number(env, "WORKER_CONCURRENCY", 4)),
            max_body_bytes=int(_number(env, "MAX_BODY_BYTES", 1 << 20)),
            max_webhook_body_bytes=int(_number(env, "MAX_WEBHOOK_BODY_BYTES", 256 << 20)),
            max_evi_body_bytes=int(_number(env, "MAX_EVI_BODY_BYTES", 1 << 20)),
            body_read_timeout_s=_number(env, "BODY_READ_TIMEOUT_S", 30.0),
            header_read_timeout_s=_number(env, "HEADER_READ_TIMEOUT_S", 10.0),
            limit_concurrency=int(_number(env, "LIMIT_CONCURRENCY", 512)),
            timeout_keep_alive_s=_number(env, "TIMEOUT_KEEP_ALIVE_S", 5.0),
            export_connections=int(_number(env, "EXPORT_CONNECTIONS", 0)),
            export_statement_timeout_s=_number(env, "EXPORT_STATEMENT_TIMEOUT_S", 300.0),
            export_write_timeout_s=_number(env, "EXPORT_WRITE_TIMEOUT_S", 30.0),
            reconcile_after_s=_number(env, "RECONCILE_AFTER_S", 600.0),
            reconcile_interval_s=_number(env, "RECONCILE_INTERVAL_S", 15.0),
            worker_max_attempts=int(_number(env, "WORKER_MAX_ATTEMPTS", 8)),
            worker_retry_base_s=_number(env, "WORKER_RETRY_BASE_S", 2.0),
            worker_retry_cap_s=_number(env, "WORKER_RETRY_CAP_S", 300.0),
            worker_heartbeat_s=_number(env, "WORKER_HEARTBEAT_S", 5.0),
            stalled_after_s=_number(env, "STALLED_AFTER_S", 30.0),
            hume_max_retries=int(_number(env, "HUME_MAX_RETRIES", 2)),
            emulator_port=int(_number(env, "EMULATOR_PORT", 8001)),
            cors_allow_origins=tuple(o.strip() for o in env.get("CORS_ALLOW_ORIGINS", "").split(",") if o.strip()),
            hume_token_refresh_margin_s=_number(env, "HUME_TOKEN_REFRESH_MARGIN_S", 300.0),
            tts_cache_max_bytes=int(_number(env, "TTS_CACHE_MAX_BYTES", 512 << 20)),
        )
        if settings.database_url is not None:
            sqlalchemy_url(settings.database_url)
        return settings

    @property
    def uses_emulator(self) -> bool:
        return self.hume_api_key is None and self.hume_base_url is None

    @property
    def callback_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def hume_url(self) -> str:
        """Where Hume calls go: the built-in emulator, HUME_BASE_URL, or Hume itself."""
        if self.uses_emulator:
            return self.emulator_url
        return self.hume_base_url or PRODUCTION_HUME_URL

    @property
    def hume_key(self) -> str:
        return EMULATOR_API_KEY if self.uses_emulator else (self.hume_api_key or "")

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
