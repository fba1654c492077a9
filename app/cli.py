"""`python -m app <command>`: serve, worker, migrate, emulator, run, create-key, import, submit, summary,
export, replay."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from app.config import Settings

DATA_DIR = Path(".data")
# Embedded Postgres handles started by this process; stopped when the command ends (Ctrl-C included).
_embedded: list[Any] = []


def _database_url(settings: Settings, keep: list[Any]) -> str:
    """DATABASE_URL, or the embedded Postgres under .data/ (its handle is kept alive in `keep`)."""
    if settings.database_url:
        return settings.database_url
    from app import embedded

    handle, url = embedded.start(DATA_DIR / "postgres")
    _embedded.append(handle)
    return url


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def _with_db(settings: Settings, keep: list[Any]) -> Settings:
    from dataclasses import replace

    return replace(settings, database_url=_database_url(settings, keep))


def _run_async(func: Callable[[Any], Awaitable[int]], settings: Settings) -> int:
    """Run a command against the resources `build_deps` makes (the same wiring as the server's)."""
    from app.wiring import build_deps

    async def runner() -> int:
        async with build_deps(settings, pool_size=2) as deps:
            return await func(deps)

    return asyncio.run(runner())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.web.application import create_app
    from app.web.wire_limits import uvicorn_options

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    print(f"Serving on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning", lifespan="on",
        timeout_graceful_shutdown=10, **uvicorn_options(settings),
    )  # fmt: skip
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Development: embedded Postgres, migrations, the emulator, a dev API key, then serve."""
    keep: list[Any] = []
    settings = _with_db(settings, keep)
    assert settings.database_url is not None
    migrate(settings.database_url)
    path = DATA_DIR / "dev-api-key"
    remembered = path.read_text().strip() if path.exists() else None
    key = asyncio.run(_dev_key(settings, remembered))
    if key != remembered:
        DATA_DIR.mkdir(exist_ok=True)
        path.write_text(key + "\n")
        path.chmod(0o600)
    where = "embedded Postgres under .data/" if not Settings.from_env().database_url else "DATABASE_URL"
    hume = "the built-in emulator" if settings.uses_emulator else (settings.hume_base_url or "api.hume.ai")
    print(f"Database: {where}; Hume: {hume}", flush=True)
    print(f"Development API key (all scopes): {key}", flush=True)
    print(
        f"Try: curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        f'-d \'{{"urls": ["https://example.com/interview.mp4"]}}\' '
        f"http://{settings.host}:{settings.port}/v1/jobs",
        flush=True,
    )
    return cmd_serve(args, settings)


async def _dev_key(settings: Settings, remembered: str | None) -> str:
    """The remembered development key if it is still valid, else a new one with every scope."""
    from app.store import api_keys
    from app.store.db import make_engine, make_sessionmaker

    assert settings.database_url is not None
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            if remembered and await api_keys.find(session, remembered) is not None:
                return remembered
            return await api_keys.create(session, name="development", scopes=list(api_keys.SCOPES))
    finally:
        await engine.dispose()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from app.inbox.task_queue import run_worker

    keep: list[Any] = []
    settings = _with_db(settings, keep)

    async def work(deps: Any) -> int:
        print("Worker running; Ctrl-C stops it", flush=True)
        await run_worker(deps, install_signal_handlers=True)
        return 0

    return _run_async(work, settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    keep: list[Any] = []
    url = _database_url(settings, keep)
    migrate(url)
    print("Database is at the latest migration")
    return 0


def cmd_create_key(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import api_keys
    from app.store.db import make_engine, make_sessionmaker

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]

    async def create() -> str:
        assert settings.database_url is not None
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await api_keys.create(session, name=args.name, scopes=scopes, tenant=args.tenant)
        finally:
            await engine.dispose()

    try:
        key = asyncio.run(create())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Created key '{args.name}' of tenant '{args.tenant}' with scopes {','.join(scopes)}.")
    print("It is shown once; store it now:")
    print(key)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from app.batch import prediction_import as importer

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    try:
        document = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2

    from app.prediction_rows import PredictionFormatError

    async def run(deps: Any) -> int:
        try:
            job_id, count = await importer.import_document(
                deps.sessionmaker, document, url=args.url, name=Path(args.file).name
            )
        except PredictionFormatError as exc:
            print(f"error: {args.file}: {exc}", file=sys.stderr)
            return 2
        print(f"Imported {count} predictions", file=sys.stderr)
        print(job_id)
        return 0

    return _run_async(run, settings)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from app.jobs import job_submission
    from app.jobs.job_schemas import submit_request
    from app.store import jobs as job_store

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    models: dict[str, Any] | None = {m.strip(): {} for m in args.models.split(",")} if args.models else None
    request = submit_request({"urls": args.urls, **({"models": models} if models else {})})

    async def run(deps: Any) -> int:
        job, _ = await job_submission.submit(deps, None, request, None)
        print(job.id, flush=True)
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            async with deps.sessionmaker() as session:
                current = await job_store.get(session, job.id)
            assert current is not None
            if current.status in job_store.FINAL:
                print(f"{current.status} {current.num_predictions} predictions", file=sys.stderr)
                return 0 if current.status == "completed" else 1
            await asyncio.sleep(0.5)
        print("timed out waiting (is a server or worker running?)", file=sys.stderr)
        return 1

    return _run_async(run, settings)


def _job_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        print(f"error: {raw!r} is not a job id", file=sys.stderr)
        return None


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import jobs as job_store
    from app.store import queries

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    job_id = _job_id(args.job_id)
    if job_id is None:
        return 2

    async def run(deps: Any) -> int:
        async with deps.sessionmaker() as session:
            if await job_store.get(session, job_id) is None:
                print(f"error: no job {job_id}", file=sys.stderr)
                return 1
            models = await queries.summary(session, job_id)
        print(orjson.dumps({"job_id": str(job_id), "models": models}, option=orjson.OPT_INDENT_2).decode())
        return 0

    return _run_async(run, settings)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from app.analytics import csv_export as exports
    from app.store import queries

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    job_id = _job_id(args.job_id)
    if job_id is None:
        return 2

    async def run(deps: Any) -> int:
        out = sys.stdout.buffer
        async for chunk in exports.csv_chunks(deps.sessionmaker, queries.PredictionFilter(job_id=job_id)):
            out.write(chunk)
        out.flush()
        return 0

    return _run_async(run, settings)


def cmd_evi_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from app.evi import chat_events as evi_chats

    keep: list[Any] = []
    settings = _with_db(settings, keep)
    try:
        since = datetime.fromisoformat(args.since)
    except ValueError:
        print(f"error: --since {args.since!r} is not an ISO 8601 date or time", file=sys.stderr)
        return 2
    since = since if since.tzinfo else since.replace(tzinfo=UTC)

    async def run(deps: Any) -> int:
        result = await evi_chats.backfill(deps, since=since)
        for chat_id, error in result.failed.items():
            print(f"failed {chat_id}: {error}", file=sys.stderr)
        print(
            f"{result.listed} chats since {since.isoformat()}: {len(result.ingested)} ingested, "
            f"{len(result.already_stored)} already stored, {len(result.active)} still active, "
            f"{len(result.failed)} failed",
            flush=True,
        )
        return 1 if result.failed else 0

    return _run_async(run, settings)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from app.errors import AppError
    from app.inbox import replay as events

    keep: list[Any] = []
    settings = _with_db(settings, keep)

    async def run(deps: Any) -> int:
        try:
            event = await events.replay(deps, args.event_id)
        except AppError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        print(f"Event {event.id} ({event.provider} {event.event_type}) queued again; a worker will process it")
        return 0

    return _run_async(run, settings)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the HTTP API (and the in-process worker unless RUN_WORKER=false)")
    sub.add_parser("run", help="development: embedded Postgres + migrations + emulator + dev key + serve")
    sub.add_parser("worker", help="run a queue worker process")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("emulator", help="run the Hume emulator alone (options: python -m app emulator --help)")
    ck = sub.add_parser("create-key", help="create an API key (printed once)")
    ck.add_argument("--name", required=True)
    ck.add_argument("--scopes", default="submit,read")
    ck.add_argument("--tenant", default="default", help="the tenant whose jobs the key submits and reads")
    im = sub.add_parser("import", help="ingest a Hume predictions JSON file as a completed job")
    im.add_argument("file")
    im.add_argument("--url", default=None, help="the media URL, when the file's sources do not say")
    sb = sub.add_parser("submit", help="submit media URLs")
    sb.add_argument("urls", nargs="+")
    sb.add_argument("--models", default=None, help="comma-separated, e.g. face,prosody")
    sb.add_argument("--wait", action="store_true", help="wait until the job ends (needs a running worker)")
    sb.add_argument("--timeout", type=float, default=600)
    sm = sub.add_parser("summary", help="print a job's summary as JSON")
    sm.add_argument("job_id")
    ex = sub.add_parser("export", help="export a job's predictions")
    ex.add_argument("job_id")
    ex.add_argument("--format", choices=["csv"], default="csv")
    eb = sub.add_parser("evi-backfill", help="ingest past EVI chats (listed through Hume's API) not stored yet")
    eb.add_argument("--since", required=True, help="ISO 8601 date or time (UTC unless it says otherwise)")
    rp = sub.add_parser("replay", help="process a stored webhook event again (e.g. a dead one)")
    rp.add_argument("event_id", type=int)
    return p


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "serve": cmd_serve,
    "run": cmd_run,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "create-key": cmd_create_key,
    "import": cmd_import,
    "submit": cmd_submit,
    "summary": cmd_summary,
    "export": cmd_export,
    "evi-backfill": cmd_evi_backfill,
    "replay": cmd_replay,
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulator"]:
        # The emulator owns its options (argparse's REMAINDER would swallow none starting with "--").
        from app import emulator

        return emulator.main(argv[1:])
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    from app import logs

    logs.configure(settings)
    # SIGTERM must unwind like Ctrl-C so the embedded Postgres is stopped (uvicorn re-raises the signal
    # after its graceful shutdown; with the default handler the process would die before cleanup).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return COMMANDS[args.command](args, settings)
        return 130
    finally:
        while _embedded:
            from app import embedded

            embedded.stop(_embedded.pop())
