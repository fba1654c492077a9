"""Shared fixtures: real Postgres (cloned per test), the emulator on a socket, the service on a socket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Deps
from app.emulator import EmulatorConfig
from app.emulator.testing import EmulatorControl, EmulatorServer
from app.store import api_keys
from app.store.db import make_engine, make_sessionmaker
from app.wiring import build_deps
from tests.database import Databases, ladder_step, server_url
from tests.servers import ServiceServer

# The environment must not leak into tests: every setting a test uses is explicit.
for _name in ("DATABASE_URL", "HUME_API_KEY", "HUME_SECRET_KEY", "HUME_BASE_URL", "HUME_CLOUD_URL", "HUME_VOICE_URL",
              "HUME_CLOUD_API_KEY", "HUME_BACKEND", "PUBLIC_BASE_URL"):  # fmt: skip
    os.environ.pop(_name, None)

# Every httpx client builds an SSL context, and loading a CA bundle file into one (certifi's, or an
# SSL_CERT_FILE) costs ~0.1 s of CPU: the service makes five at each start, the tests start it hundreds of times,
# and each `httpx.get` makes one more. A hashed certificate directory loads lazily instead. No test reaches a
# public TLS host (the TLS tests trust their own certificate explicitly); subprocesses inherit this.
if Path("/etc/ssl/certs").is_dir():
    os.environ.pop("SSL_CERT_FILE", None)
    os.environ["SSL_CERT_DIR"] = "/etc/ssl/certs"

EMULATOR_KEY = "test-hume-key"


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {ladder_step()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: the worker processes (pytest-xdist) each start on one while the short ones fill
    the gaps, instead of one long test left running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    with server_url() as url:
        dbs = Databases(url, spares=2)
        try:
            yield dbs
        finally:
            dbs.close()


@pytest.fixture
def database_url(databases: Databases) -> Iterator[str]:
    name, url = databases.clone()
    try:
        yield url
    finally:
        databases.release(name)


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, pool_size=2)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[EmulatorServer]:
    # No rate limit: service tests drive our code, which would otherwise wait out 429s from a busy session
    # (tests/emulator/test_v1_contract.py proves the limit itself).
    with EmulatorServer(EmulatorConfig(api_key=EMULATOR_KEY, callback_backoff_s=0.05, requests_per_minute=None)) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_session: EmulatorServer) -> EmulatorServer:
    emulator_session.reset()
    return emulator_session


# The built-in emulator: no Hume key and no Hume URL set (settings overrides for make_service).
BUILT_IN_EMULATOR: dict[str, Any] = {
    "hume_api_key": None, "hume_secret_key": None, "hume_base_url": None, "hume_voice_url": None,
    "hume_cloud_url": None,
}  # fmt: skip


def hume_environment(emulator: EmulatorControl) -> dict[str, str]:
    """The variables that point a `python -m app` process at the test emulator's two hosts, with the batch
    backend that most tests exercise (with a Hume key the service's own default is v1)."""
    return {"HUME_API_KEY": EMULATOR_KEY, "HUME_VOICE_URL": emulator.base_url, "HUME_CLOUD_URL": emulator.cloud_url,
            "HUME_BACKEND": "batch"}  # fmt: skip


def service_settings(database_url: str, emulator: EmulatorControl, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": database_url,
        "hume_api_key": EMULATOR_KEY,
        "hume_secret_key": "test-secret",
        "hume_voice_url": emulator.base_url,
        "hume_cloud_url": emulator.cloud_url,
        "hume_backend": "batch",
        "log_level": "WARNING",
        "worker_concurrency": 4,
    }
    base.update(overrides)
    return Settings(**base)


def create_key(database_url: str, scopes: list[str], name: str = "test", tenant: str = api_keys.DEFAULT_TENANT) -> str:
    async def create() -> str:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await api_keys.create(session, name=name, scopes=scopes, tenant=tenant)
        finally:
            await engine.dispose()

    return asyncio.run(create())


@dataclass
class Service:
    server: ServiceServer
    key: str
    database_url: str

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=30)


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(database_url: str, emulator: EmulatorServer) -> Iterator[ServiceFactory]:
    """Start the service (uvicorn, real socket) against the per-test database and the emulator."""
    running: list[ServiceServer] = []

    def start(**overrides: Any) -> Service:
        server = ServiceServer(service_settings(database_url, emulator, **overrides)).__enter__()
        running.append(server)
        return Service(server=server, key=create_key(database_url, list(api_keys.SCOPES)), database_url=database_url)

    try:
        yield start
    finally:
        for server in reversed(running):
            server.__exit__(None, None, None)


@pytest.fixture
def service(make_service: ServiceFactory) -> Service:
    return make_service()


@pytest.fixture
async def deps(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], emulator: EmulatorServer
) -> AsyncIterator[Deps]:
    """The service's dependencies without its HTTP server: for calling service functions directly."""
    async with build_deps(service_settings(database_url, emulator), pool_size=2) as built:
        yield built


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """`python -m app worker` processes a test started (see `start_worker`), stopped after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def worker_environment(
    service: Service, emulator: EmulatorServer, stalled_after_s: float, **extra: str
) -> dict[str, str]:
    """What a `python -m app worker` subprocess of a kill test needs: the service's database and URL, the
    emulator as Hume, and heartbeats fast enough that a killed worker's tasks are taken back in seconds."""
    return {
        **os.environ,
        "DATABASE_URL": service.database_url,
        **hume_environment(emulator),
        "PUBLIC_BASE_URL": service.url,
        "LOG_LEVEL": "WARNING",
        "WORKER_HEARTBEAT_S": "0.5",
        "STALLED_AFTER_S": str(stalled_after_s),
        "RECONCILE_INTERVAL_S": "1",
        **extra,
    }


def start_worker(env: dict[str, str], started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    started.append(process)
    return process


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for the host name media.test, made with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=media.test",
         "-addext", "subjectAltName=DNS:media.test", "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
