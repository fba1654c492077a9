"""`python -m app webhooks replay --since TIME` and `webhooks listen --port N`: our outbound webhooks."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.commands.server_commands import run_with_deps, with_database
from app.config import Settings
from app.deps import Deps

DEV_KEY = Path(".data") / "dev-api-key"


def _iso_time(raw: str) -> datetime:
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {raw!r}") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def cmd_webhooks(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "listen":
        from app.notifications import listen_command

        url = args.service_url or os.environ.get("HES_SERVICE_URL") or f"http://127.0.0.1:{settings.port}"
        events = args.events.split(",") if args.events else None
        # What `make run` made, so `listen` works there with no flags.
        key = args.key or os.environ.get("HES_API_KEY") or (DEV_KEY.read_text().strip() if DEV_KEY.exists() else None)
        return listen_command.run(url, key, args.port, events)
    from app.notifications import redelivery

    async def run(deps: Deps) -> int:
        replay = await redelivery.replay_since(deps, args.since)
        print(f"{len(replay.queued)} undelivered message(s) since {args.since.isoformat()} queued again")
        return 0

    return run_with_deps(with_database(settings), run)


def add_parsers(sub: Any) -> None:
    wh = sub.add_parser("webhooks", help="our outbound webhooks: replay undelivered messages, listen locally")
    wh.set_defaults(func=cmd_webhooks)
    actions = wh.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay = actions.add_parser("replay", help="send every undelivered message created since TIME again")
    replay.add_argument("--since", required=True, type=_iso_time, help="ISO 8601 date or time (UTC unless it says)")
    listen = actions.add_parser("listen", help="register a local receiver, verify and print each delivery")
    listen.add_argument("--port", type=int, required=True)
    listen.add_argument("--service-url", default=None, help="default: HES_SERVICE_URL or http://127.0.0.1:PORT")
    listen.add_argument("--key", default=None, help="webhooks/admin API key (default: HES_API_KEY, else make run's)")
    listen.add_argument("--events", default=None, help="comma-separated event types (default: all)")
