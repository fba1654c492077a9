"""What `make run` prints once it is up (and `python -m app status` prints again), and the port check
that runs before anything starts."""

from __future__ import annotations

import errno
import json
import shlex
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.config import HUME_CLOUD_URL, HUME_VOICE_URL, Settings
from app.hume import catalog

DATA_DIR = Path(".data")
RUN_FILE = DATA_DIR / "run.json"
KEY_FILE = DATA_DIR / "dev-api-key"


def why_port_unusable(host: str, port: int) -> str | None:
    """Why host:port cannot be listened on ("is already in use", ...), or None when it can."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
    return None


def taken_port(settings: Settings) -> str | None:
    """One line naming the variable to change when a port we need is taken, else None."""
    wanted = [("PORT", settings.host, settings.port)]
    if settings.uses_emulator:
        wanted.append(("EMULATOR_PORT", "127.0.0.1", settings.built_in_emulator_port))
        wanted.append(("EMULATOR_CLOUD_PORT", "127.0.0.1", settings.built_in_emulator_cloud_port))
    hints = {"EMULATOR_PORT": "; the emulator's port defaults to PORT + 1",
             "EMULATOR_CLOUD_PORT": "; the emulator's cloud port defaults to EMULATOR_PORT + 1"}  # fmt: skip
    for variable, host, port in wanted:
        why = why_port_unusable(host, port)
        if why is not None:
            hint = hints.get(variable, "")
            return f"port {port} on {host} {why}: set {variable} to a free port{hint}"
    return None


def masked(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True)
class Banner:
    api_url: str
    emulator_url: str | None
    key: str
    database_url: str
    """Printable: the embedded server's URL in full, a configured one without its password."""
    psql: str
    embedded: bool
    hume: str
    """Where our Hume calls go, then one line per Hume API (app/hume/catalog.py)."""
    logs: str
    emulator_cloud_url: str | None = None

    def _emulator(self) -> str:
        if self.emulator_url is None:
            return "not started (a Hume key or URL is set)"
        cloud = f", {self.emulator_cloud_url} (for {HUME_CLOUD_URL})" if self.emulator_cloud_url else ""
        return f"{self.emulator_url} (for {HUME_VOICE_URL}){cloud}"

    def render(self, status: str = "started") -> str:
        first, *apis = self.hume.splitlines()
        lines = [
            f"Hume expression service {status}.",
            "",
            f"         API URL: {self.api_url}",
            f"   Dashboard URL: {self.api_url}/dashboard",
            f"        API docs: {self.api_url}/docs",
            f"    Emulator URL: {self._emulator()}",
            f"            Hume: {first}",
            *(f"                  {line}" for line in apis),
            f"    Database URL: {self.database_url}{'  (embedded, under .data/)' if self.embedded else ''}",
            f"            psql: {self.psql}",
            f"            Logs: {self.logs}",
            "",
            "Development API key (every scope), for the README's examples:",
            f"  export KEY={self.key}",
            "",
            "Try every event: python -m app trigger batch-job | evi-chat | tts",
            "Check Hume's APIs: python -m app hume check",
            "Show this again: python -m app status.   Ctrl-C stops everything.",
        ]
        return "\n".join(lines)

    def save(self) -> None:
        DATA_DIR.mkdir(exist_ok=True)
        RUN_FILE.write_text(json.dumps(asdict(self), indent=2) + "\n")
        RUN_FILE.chmod(0o600)


def make(settings: Settings, key: str, database_url: str, embedded: bool, psql_binary: str) -> Banner:
    api = f"http://{settings.host}:{settings.port}"
    if settings.uses_emulator:
        where = "the built-in emulator, for both of Hume's hosts (no Hume account needed):"
    else:
        where = catalog.hosts_in_use(settings) + ":"
    hume = "\n".join([where, *catalog.describe(settings)])
    shown = database_url if embedded else masked(database_url)
    psql = f"{psql_binary} {shlex.quote(database_url)}" if embedded else f'{psql_binary} "$DATABASE_URL"'
    other = "LOG_FORMAT=json for JSON" if settings.log_format == "console" else "LOG_FORMAT=console for plain lines"
    logs = f"this terminal ({settings.log_format}, level {settings.log_level}; {other})"
    emulator = settings.emulator_url if settings.uses_emulator else None
    cloud = settings.emulator_cloud_url if settings.uses_emulator else None
    return Banner(api, emulator, key, shown, psql, embedded, hume, logs, cloud)


def load() -> Banner | None:
    """The banner the last `make run` in this directory saved, if any."""
    try:
        return Banner(**json.loads(RUN_FILE.read_text()))
    except (OSError, ValueError, TypeError):
        return None
