"""Commands over the stored data: keys, import, submit, summary, export, evi-backfill, replay."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from app.commands.errors import FAILED, CommandError
from app.commands.server_commands import one_session, run_with_deps, with_database
from app.commands.terminal_progress import Progress
from app.config import Settings
from app.core.job_status import FINAL
from app.deps import Deps


def job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise CommandError(f"{raw!r} is not a job id (a UUID such as the one `submit` prints)") from None


async def _session_run(settings: Settings, work: Any) -> Any:
    async with one_session(settings) as session:
        return await work(session)


def cmd_create_key(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import api_keys

    settings = with_database(settings)
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    try:
        key = asyncio.run(
            _session_run(settings, lambda s: api_keys.create(s, name=args.name, scopes=scopes, tenant=args.tenant))
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    spanning = sorted(set(scopes) & set(api_keys.GLOBAL_SCOPES))
    owner = f"global ({' and '.join(spanning)} act on every tenant)" if spanning else f"of tenant '{args.tenant}'"
    print(f"Created key '{args.name}' {owner} with scopes {','.join(scopes)}.")
    print("It is shown once; store it now:")
    print(key)
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import api_keys

    settings = with_database(settings)
    if args.action == "revoke":
        key_id = job_id(args.key_id)
        if not asyncio.run(_session_run(settings, lambda s: api_keys.revoke(s, key_id))):
            raise CommandError(f"no active key {key_id} (see `python -m app keys list`)", FAILED)
        # True at once in every process: each request looks its key up (no cache), each dashboard page too.
        print(f"Revoked key {key_id}; requests with it now answer 401 and its dashboard sessions are over")
        return 0
    keys: list[api_keys.KeyInfo] = asyncio.run(_session_run(settings, api_keys.all_keys))
    print(f"{'id':36}  {'state':7}  {'created':16}  {'scopes':30}  {'tenant':16}  name")
    for k in keys:
        state = "revoked" if k.revoked_at else "active"
        tenant = k.tenant
        if set(k.scopes) & set(api_keys.GLOBAL_SCOPES) and k.tenant != api_keys.DEFAULT_TENANT:
            tenant += " (no admin/analyst: stored with a tenant)"  # see api_keys.Principal.grants
        print(f"{k.key_id}  {state:7}  {k.created_at:%Y-%m-%d %H:%M}  {','.join(k.scopes):30}  {tenant:16}  {k.name}")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from app.batch import prediction_import as importer
    from app.core.prediction_rows import PredictionFormatError

    try:
        document = Path(args.file).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    settings = with_database(settings)

    async def run(deps: Deps) -> int:
        with Progress(f"importing {Path(args.file).name} ({len(document) / 1e6:.1f} MB):") as progress:
            progress.set(0, "decoding and storing")
            try:
                new_id, count = await importer.import_document(
                    deps.sessionmaker, document, url=args.url, name=Path(args.file).name
                )
            except PredictionFormatError as exc:
                raise CommandError(f"{args.file}: {exc}") from None
            progress.set(count, "predictions stored")
        print(f"Imported {count} predictions", file=sys.stderr)
        print(new_id)
        return 0

    return run_with_deps(settings, run)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from app.jobs import service as job_service
    from app.jobs.schemas import submit_request
    from app.store import jobs as job_store

    models: dict[str, Any] | None = {m.strip(): {} for m in args.models.split(",")} if args.models else None
    request = submit_request({"urls": args.urls, **({"models": models} if models else {})})
    settings = with_database(settings)

    async def run(deps: Deps) -> int:
        job, *_ = await job_service.submit(deps, None, request, None)
        print(job.id, flush=True)
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        with Progress(f"job {job.id}:") as progress:
            while time.monotonic() < deadline:
                async with deps.sessionmaker() as session:
                    current = await job_store.get(session, job.id)
                assert current is not None
                progress.set(current.num_predictions, f"predictions, {current.status}")
                if current.status in FINAL:
                    progress.done()
                    print(f"{current.status} {current.num_predictions} predictions", file=sys.stderr)
                    return 0 if current.status == "completed" else FAILED
                await asyncio.sleep(0.5)
        raise CommandError(f"timed out after {args.timeout:g} s waiting (is a server or worker running?)", FAILED)

    return run_with_deps(settings, run)


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import analytics
    from app.store import jobs as job_store

    wanted = job_id(args.job_id)
    settings = with_database(settings)

    async def run(deps: Deps) -> int:
        async with deps.sessionmaker() as session:
            job = await job_store.get(session, wanted)
            if job is None:
                raise CommandError(f"no job {wanted}", FAILED)
            models = await analytics.summary(session, wanted)
        body = {"job_id": str(wanted), "status": job.status, "models": models}
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return 0

    return run_with_deps(settings, run)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from app.analytics import csv_export
    from app.store import analytics
    from app.store import jobs as job_store

    wanted = job_id(args.job_id)
    if args.time_from is not None and args.time_to is not None and args.time_to <= args.time_from:
        raise CommandError("--to must be after --from")
    settings = with_database(settings)
    filt = analytics.PredictionFilter(
        job_id=wanted, model=args.model, source_id=args.source, group=args.group,
        time_from=args.time_from, time_to=args.time_to,
    )  # fmt: skip

    async def run(deps: Deps, out: BinaryIO) -> int:
        async with deps.sessionmaker() as session:
            job = await job_store.get(session, wanted)
            if job is None:
                raise CommandError(f"no job {wanted}", FAILED)
            if job.predictions_expired_at is not None:
                raise CommandError(
                    f"job {wanted}'s predictions were deleted on {job.predictions_expired_at.date().isoformat()} under"
                    f" its tenant's retention (`python -m app tenant-retention {job.tenant}`); `summary` still answers",
                    FAILED,
                )
            total = await analytics.count_predictions(session, filt)
        with Progress("exported", total) as progress:
            rows = -1  # the header line
            async for chunk in csv_export.csv_chunks(deps.sessionmaker, filt):
                out.write(chunk)
                rows += chunk.count(b"\n")
                progress.set(max(rows, 0))
        out.flush()
        if args.output:
            print(f"Wrote {total} predictions to {args.output}", file=sys.stderr)
        return 0

    if not args.output:
        return run_with_deps(settings, lambda deps: run(deps, sys.stdout.buffer))
    try:
        with open(args.output, "wb") as out:
            return run_with_deps(settings, lambda deps: run(deps, out))
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
    except CommandError:
        Path(args.output).unlink(missing_ok=True)
        raise


def cmd_evi_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from app.evi import service as evi_service
    from app.hume import catalog

    if catalog.retired_at_hume(catalog.EVI, settings):
        # Nothing to list: Hume's EVI ended 2026-11-13 and its account data went with it (app.hume.catalog).
        raise CommandError(f"nothing backfilled: {catalog.EVI.retired_message()}", FAILED)
    try:
        since = datetime.fromisoformat(args.since)
    except ValueError:
        raise CommandError(f"--since {args.since!r} is not an ISO 8601 date or time") from None
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    settings = with_database(settings)

    async def run(deps: Deps) -> int:
        with Progress("chats") as progress:
            result = await evi_service.backfill(
                deps, since=since, progress=lambda done, total: progress.set(done, total=total)
            )
        for chat_id, error in result.failed.items():
            print(f"failed {chat_id}: {error}", file=sys.stderr)
        print(
            f"{result.listed} chats since {since.isoformat()}: {len(result.ingested)} ingested, "
            f"{len(result.already_stored)} already stored, {len(result.active)} still active, "
            f"{len(result.failed)} failed",
            flush=True,
        )
        return FAILED if result.failed else 0

    return run_with_deps(settings, run)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from app.inbox import replay

    settings = with_database(settings)

    async def run(deps: Deps) -> int:
        event = await replay.replay(deps, args.event_id)
        print(f"Event {event.id} ({event.provider} {event.event_type}) queued again; a worker will process it")
        return 0

    return run_with_deps(settings, run)
