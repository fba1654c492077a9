"""`python -m app <command>`: the parser, and the one place a failure becomes one line on stderr and an
exit code (2: a mistake in the command or a setting; 1: the command could not do it)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable

from app.commands import data_commands as data
from app.commands import decisions_commands, hume_commands, tenant_commands, trigger_commands, webhook_commands
from app.commands import server_commands as servers
from app.commands.errors import FAILED, USAGE, CommandError
from app.commands.server_commands import migrate
from app.config import Settings
from app.config.sources import SettingsError

__all__ = ["main", "migrate", "parser"]

Command = Callable[[argparse.Namespace, Settings], int]


def _listen_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="interface to listen on (default: HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: PORT, else 8000)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app", description="The Hume expression service. Settings come from the environment "
        "and .env (see README, Configuration). `python -m app COMMAND --help` describes each command.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help: str, description: str | None = None) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".")
        command.set_defaults(func=func)
        return command

    _listen_options(add(
        "serve", servers.cmd_serve, "serve the HTTP API (and the in-process worker unless RUN_WORKER=false)",
        "Serve the HTTP API on HOST:PORT, with the queue worker inside unless RUN_WORKER=false. Needs "
        "DATABASE_URL (a migrated database); ports are checked before anything starts.",
    ))  # fmt: skip
    _listen_options(add(
        "run", servers.cmd_run, "development: Postgres, migrations, the emulator, a dev key, then serve",
        "Development: check the ports, start the embedded Postgres under .data/ (unless DATABASE_URL), migrate, "
        "create a development key, start the Hume emulator (unless a Hume key or URL is set), print the "
        "banner and serve. Ctrl-C stops everything.",
    ))  # fmt: skip
    add("worker", servers.cmd_worker, "run a queue worker process (needs DATABASE_URL)",
        "Run a queue worker: processes webhook events, submissions and reconciliation. Needs DATABASE_URL; "
        "scale out by running several, with RUN_WORKER=false on the servers.")  # fmt: skip
    add("migrate", servers.cmd_migrate, "apply database migrations (DATABASE_URL, else the embedded Postgres)")
    status = add("status", servers.cmd_status, "print the start-up banner of the service `make run` started here again")
    status.add_argument("--key", action="store_true", help="print only the development API key (for export KEY=...)")
    sub.add_parser("emulator", help="run the Hume emulator alone (options: python -m app emulator --help)")
    ck = add("create-key", data.cmd_create_key, "create an API key (printed once, alone on the last line)")
    ck.add_argument("--name", required=True, help="who or what uses the key")
    ck.add_argument(
        "--scopes", default="submit,read", help="comma-separated: submit,read,token,tts,webhooks,analyst,admin"
    )
    ck.add_argument(
        "--tenant",
        default="default",
        help="the tenant whose jobs the key submits and reads; refused for admin/analyst keys (they are global)",
    )
    keys = add("keys", data.cmd_keys, "list API keys, or revoke one")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    keys_sub.add_parser("list", help="every key: id, state, creation time, scopes, name")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id (from `keys list`)")
    revoke.add_argument("key_id")
    im = add("import", data.cmd_import, "ingest a Hume predictions JSON file as a completed job")
    im.add_argument("file")
    im.add_argument("--url", default=None, help="the media URL, when the file's sources do not say")
    sb = add("submit", data.cmd_submit, "submit media URLs as a job; prints its id")
    sb.add_argument("urls", nargs="+")
    sb.add_argument("--models", default=None, help="comma-separated, e.g. face,prosody")
    sb.add_argument("--wait", action="store_true", help="wait until the job ends (needs a running server or worker)")
    sb.add_argument("--timeout", type=float, default=600, help="seconds --wait waits (default 600)")
    sm = add("summary", data.cmd_summary, "print a job's status and per-model summary as JSON")
    sm.add_argument("job_id")
    ex = add("export", data.cmd_export, "export a job's predictions as CSV (the HTTP API's filters)")
    ex.add_argument("job_id")
    ex.add_argument("--model", help="one model, e.g. face")
    ex.add_argument("--source", type=int, help="one source id")
    ex.add_argument("--group", help="one group, e.g. face_0, user, assistant")
    ex.add_argument("--from", dest="time_from", type=float, help="predictions ending after this second")
    ex.add_argument("--to", dest="time_to", type=float, help="predictions starting before this second")
    ex.add_argument("--output", "-o", help="write to this file (default: standard output)")
    eb = add("evi-backfill", data.cmd_evi_backfill, "ingest past EVI chats (listed through Hume's API) not stored yet")
    eb.add_argument("--since", required=True, help="ISO 8601 date or time (UTC unless it says otherwise)")
    rp = add("replay", data.cmd_replay, "process a stored webhook event again (e.g. a dead one)")
    rp.add_argument("event_id", type=int)
    trigger_commands.add_parsers(sub)
    webhook_commands.add_parsers(sub)
    hume_commands.add_parsers(sub)
    decisions_commands.add_parsers(sub)
    tenant_commands.add_parsers(sub)
    return p


def _one_line(exc: BaseException) -> str:
    from app.errors import AppError

    text = exc.message if isinstance(exc, AppError) else str(exc)
    return " ".join(text.split())


def _failure(exc: Exception) -> tuple[str, int]:
    """The line and exit code for what a command raised; a programming error is raised again."""
    import sqlalchemy.exc

    from app.errors import AppError, InvalidInput

    if isinstance(exc, CommandError):
        return str(exc), exc.code
    if isinstance(exc, SettingsError):
        return _one_line(exc), USAGE
    if isinstance(exc, AppError):
        return _one_line(exc), USAGE if isinstance(exc, InvalidInput) else FAILED
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError | TimeoutError):
        return f"the database stopped answering: {_one_line(exc.__cause__ or exc)}", FAILED
    raise exc


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulator"]:
        # The emulator owns its options (argparse's REMAINDER would swallow none starting with "--").
        from app import emulator

        return emulator.main(argv[1:])
    args = parser().parse_args(argv)
    # SIGTERM must unwind like Ctrl-C so the embedded Postgres is stopped (uvicorn re-raises the signal
    # after its graceful shutdown; with the default handler the process would die before cleanup).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = Settings.from_env()
        from app import logs

        logs.configure(settings)
        with contextlib.suppress(KeyboardInterrupt):
            return int(args.func(args, settings))
        return 130
    except Exception as exc:  # every user-facing failure is one line; bugs re-raise in _failure
        line, code = _failure(exc)
        print(f"error: {line}", file=sys.stderr)
        return code
    finally:
        servers.stop_embedded()
