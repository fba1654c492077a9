"""serve, run, worker, migrate, status: the commands that start (or describe) the service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.commands import startup_banner, worker_metrics
from app.commands.errors import FAILED, CommandError, check_database
from app.commands.startup_banner import DATA_DIR, KEY_FILE
from app.config import Settings
from app.core import process_tuning
from app.deps import Deps

# Embedded Postgres handles started by this process; stopped when the command ends (Ctrl-C included).
embedded_handles: list[Any] = []
NO_DATABASE = (
    "DATABASE_URL is not set: {what} needs the service's database "
    "(for development, `make run` starts an embedded Postgres and serves)"
)


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parents[2] / "alembic.ini"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def embedded_url() -> str:
    from app.commands import embedded

    handle, url = embedded.start(DATA_DIR / "postgres")
    embedded_handles.append(handle)
    return url


def stop_embedded() -> None:
    from app.commands import embedded

    while embedded_handles:
        embedded.stop(embedded_handles.pop())


def with_database(settings: Settings, *, migrated: bool = True) -> Settings:
    """DATABASE_URL, or the embedded Postgres under .data/ (development), checked to answer in seconds."""
    url = settings.database_url or embedded_url()
    check_database(url, migrated=migrated)
    return settings.replace(database_url=url)


def require_deployment_settings(settings: Settings, what: str, *, serving: bool = False) -> None:
    """Outside development, refuse to start with a setting missing whose default only suits one machine (a
    worker without PUBLIC_BASE_URL sends Hume callbacks for 127.0.0.1, and every job waits for the reconciler;
    API processes without one DASHBOARD_SECRET refuse each other's dashboard sessions)."""
    gaps = settings.deployment_gaps(serving=serving)
    if gaps:
        names = ", ".join(gaps[:-1]) + " and " + gaps[-1] if len(gaps) > 1 else gaps[0]
        why = f"ENVIRONMENT is {settings.environment}" if not settings.development else (
            f"WEB_CONCURRENCY is {settings.web_concurrency}")  # fmt: skip
        raise CommandError(f"{why}: {what} needs {names} set (ENVIRONMENT=development uses the development defaults)")


@contextlib.asynccontextmanager
async def one_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on an engine of one connection, disposed of after: a command's few statements need no
    pool, nor the rest of what `build_deps` makes."""
    from app.store.db import make_engine, make_sessionmaker

    assert settings.database_url is not None
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        await engine.dispose()


def run_with_deps(settings: Settings, func: Callable[[Deps], Awaitable[int]], *, pool_size: int = 2) -> int:
    """Run a command against the resources `build_deps` makes (the same wiring as the server's)."""
    from app.wiring import build_deps

    async def runner() -> int:
        async with build_deps(settings, pool_size=pool_size) as deps:
            return await func(deps)

    return asyncio.run(runner())


def _listen_on(settings: Settings, args: argparse.Namespace) -> Settings:
    changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return settings.replace(**changes) if changes else settings


def serve(settings: Settings, on_started: Callable[[], object] | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM; `on_started` runs once the server (emulator included) listens."""
    import uvicorn

    from app.web.application import create_app
    from app.web.wire_limits import uvicorn_options

    problem = startup_banner.taken_port(settings)
    if problem:
        raise CommandError(problem)
    if settings.web_concurrency > 1:
        return _serve_processes(settings, on_started)
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, owns_process=True), host=settings.host, port=settings.port, log_level="warning",
        lifespan="on", timeout_graceful_shutdown=10, **uvicorn_options(settings),
    ))  # fmt: skip

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started and on_started is not None:
            on_started()

    threading.Thread(target=announce, daemon=True).start()
    server.run()
    return 0


def _serve_processes(settings: Settings, on_started: Callable[[], object] | None) -> int:
    """WEB_CONCURRENCY uvicorn processes on one socket; each builds its app from the environment."""
    import uvicorn

    from app.web.wire_limits import uvicorn_options

    if settings.uses_emulator:
        raise CommandError(
            "WEB_CONCURRENCY above 1 needs HUME_API_KEY or HUME_BASE_URL: each process would start its own "
            "built-in emulator on one port"
        )
    # What this command decided (--host/--port, the embedded database) reaches the processes it spawns.
    os.environ.update(HOST=settings.host, PORT=str(settings.port), DATABASE_URL=settings.database_url or "")
    if settings.prometheus_multiproc_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings.prometheus_multiproc_dir
        from app.core import metrics

        metrics.clear_multiprocess_dir(settings.prometheus_multiproc_dir)
    if on_started is not None:
        on_started()
    uvicorn.run(
        "app.web.application:create_process_app", factory=True, workers=settings.web_concurrency, host=settings.host,
        port=settings.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=10,
        **uvicorn_options(settings, importable=True),
    )  # fmt: skip
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    settings = _listen_on(settings, args)
    require_deployment_settings(settings, "serve", serving=True)
    if settings.database_url is None:
        raise CommandError(NO_DATABASE.format(what="serve"))
    problem = startup_banner.taken_port(settings)
    if problem:
        raise CommandError(problem)
    settings = with_database(settings)
    return serve(settings, lambda: print(f"Serving on http://{settings.host}:{settings.port}", flush=True))


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Development: every port checked, then Postgres, migrations, a dev key, the banner, and serve."""
    settings = _listen_on(settings, args)
    problem = startup_banner.taken_port(settings)
    if problem:
        raise CommandError(problem)
    embedded = settings.database_url is None
    if embedded:
        print("Starting the embedded Postgres under .data/ ...", flush=True)
    settings = with_database(settings, migrated=False)
    assert settings.database_url is not None
    migrate(settings.database_url)
    remembered = KEY_FILE.read_text().strip() if KEY_FILE.exists() else None
    key = asyncio.run(_dev_key(settings, remembered))
    if key != remembered:
        DATA_DIR.mkdir(exist_ok=True)
        KEY_FILE.write_text(key + "\n")
        KEY_FILE.chmod(0o600)
    banner = startup_banner.make(settings, key, settings.database_url, embedded, _psql())
    banner.save()
    return serve(settings, lambda: print(banner.render(), flush=True))


def _psql() -> str:
    if shutil.which("psql"):
        return "psql"
    from app.commands import embedded

    return embedded.psql_path() or "psql"


async def _dev_key(settings: Settings, remembered: str | None) -> str:
    """The remembered development key if it is still valid, else a new one with every scope."""
    from app.store import api_keys

    async with one_session(settings) as session:
        if remembered and await api_keys.find(session, remembered) is not None:
            return remembered
        return await api_keys.create(session, name="development", scopes=list(api_keys.SCOPES))


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from app.worker.task_queue import run_worker

    require_deployment_settings(settings, "a worker")
    if settings.database_url is None:
        raise CommandError(NO_DATABASE.format(what="a worker"))
    port = settings.metrics_port
    if port is not None:
        worker_metrics.check_port(settings.host, port)
    settings = with_database(settings)

    async def work(deps: Deps) -> int:
        async with contextlib.AsyncExitStack() as stack:
            if port is not None:
                await stack.enter_async_context(worker_metrics.serving(deps, settings.host, port))
            where = f"; /metrics and /healthz on {settings.host}:{port}" if port is not None else ""
            print(f"Worker running{where}; Ctrl-C stops it", flush=True)
            process_tuning.settle()
            await run_worker(deps, install_signal_handlers=True)
        return 0

    return run_with_deps(settings, work, pool_size=settings.db_pool_size or 2)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_database(settings, migrated=False)
    assert settings.database_url is not None
    migrate(settings.database_url)
    print("Database is at the latest migration")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """The banner of the last `make run` here, and whether that service answers now."""
    banner = startup_banner.load()
    if banner is None:
        raise CommandError("no service has been started in this directory yet: run `make run`", FAILED)
    if args.key:
        print(banner.key)
        return 0
    try:
        up = httpx.get(f"{banner.api_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        up = False
    print(banner.render("is running" if up else "is NOT running (start it with `make run`); last started with"))
    return 0 if up else FAILED
