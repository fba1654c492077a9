"""`python -m app tenant-budget TENANT [--seconds N | --default | --decision-tokens N | --default-decision-tokens |
--show]`: a tenant's daily budgets of Hume-metered seconds (HUME_TENANT_DAILY_SECONDS) and of Audio Decisions input
tokens (HUME_TENANT_DAILY_DECISION_TOKENS), each the setting or the tenant's own override stored in Postgres;
`python -m app tenant-retention TENANT [--days N | --default | --show]`: how long its predictions are kept."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from app.commands.errors import CommandError
from app.commands.server_commands import one_session, with_database
from app.config import Settings

if TYPE_CHECKING:
    from app.store.hume_usage import Meter

MAX_TENANT = 128  # as `create-key --tenant` takes it (app/store/api_keys.create)


def _limit(seconds: int) -> str:
    return "no limit" if seconds == 0 else f"{seconds} s ({seconds / 3600:g} h)"


def _tokens(tokens: int) -> str:
    return "no limit" if tokens == 0 else f"{tokens} tokens"


def _tenant(raw: str) -> str:
    if not raw or "\x00" in raw or len(raw) > MAX_TENANT:
        raise CommandError(f"TENANT must be 1 to {MAX_TENANT} characters, without NUL")
    return raw


def _whole_number(unit: str, zero: str) -> Callable[[str], int]:
    """An option's parser: a whole number of `unit`, 0 (meaning `zero`) or more."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number of {unit}, got {raw!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 ({zero}) or more, got {value}")
        return value

    return parse


Show = Callable[[Settings, str, bool, int | None], Coroutine[Any, Any, list[str]]]
"""A tenant setting's work: (settings, tenant, change, value) -> the lines to print; `change` with a None
value removes the tenant's own (the setting applies)."""


def _command(show: Show, option: str) -> Callable[[argparse.Namespace, Settings], int]:
    """The command of a tenant setting: TENANT and one of --OPTION N, --default or --show (the default)."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        tenant = _tenant(args.tenant)
        value = getattr(args, option)
        change = value is not None or args.default
        lines = asyncio.run(show(with_database(settings), tenant, change, value))
        print("\n".join(lines))
        return 0

    return command


def _add_parser(
    sub: Any, name: str, *, help: str, description: str, command: Callable[[argparse.Namespace, Settings], int],
    option: str, parse: Callable[[str], int], option_help: str, default_help: str, show_help: str,
) -> Any:  # fmt: skip
    """The parser; returns its group of mutually exclusive options, for a command with more of them."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=command)
    parser.add_argument("tenant", help="the tenant, as `create-key --tenant` named it")
    action = parser.add_mutually_exclusive_group()
    action.add_argument(f"--{option}", type=parse, help=option_help)
    action.add_argument("--default", action="store_true", help=default_help)
    action.add_argument("--show", action="store_true", help=show_help)
    return action


async def _run(settings: Settings, tenant: str, meter: Meter | None, value: int | None) -> list[str]:
    """Set `meter`'s own limit to `value` (None: remove it) unless `meter` is None; show both budgets."""
    from app.decisions import token_spend
    from app.store import hume_usage

    seconds_default = settings.hume_tenant_daily_seconds
    tokens_default = token_spend.daily_limit(settings)
    async with one_session(settings) as session:
        if meter is not None:
            await hume_usage.set_tenant_limit(session, tenant, value, meter=meter)
        today = await hume_usage.tenant_today(session, tenant, default_limit=seconds_default)
        tokens = await hume_usage.tenant_today(
            session, tenant, default_limit=tokens_default, meter=hume_usage.INPUT_TOKENS
        )
    resets = today.resets_at.isoformat().replace("+00:00", "Z")
    whose = "its own" if today.override else "HUME_TENANT_DAILY_SECONDS"
    lines = [f"tenant {tenant!r}: {_limit(today.limit)} of Hume-metered seconds a day ({whose}; the "
             f"default HUME_TENANT_DAILY_SECONDS is {_limit(seconds_default)})"]  # fmt: skip
    left = "" if today.limit == 0 else f", {max(0.0, today.limit - today.spent):.1f} s left"
    lines.append(f"{today.day.isoformat()} (UTC): {today.spent:.1f} s spent{left}; resets at {resets}")
    whose = "its own" if tokens.override else "HUME_TENANT_DAILY_DECISION_TOKENS"
    lines.append(f"tenant {tenant!r}: {_tokens(tokens.limit)} of Audio Decisions input tokens a day ({whose}; the "
                 f"default HUME_TENANT_DAILY_DECISION_TOKENS is {_tokens(tokens_default)})")  # fmt: skip
    left = "" if tokens.limit == 0 else f", {max(0, tokens.limit - round(tokens.spent))} tokens left"
    lines.append(f"{tokens.day.isoformat()} (UTC): {round(tokens.spent)} tokens spent{left}; resets at {resets}")
    if meter is hume_usage.SECONDS:
        lines.append("v1 uploads of this tenant's jobs are checked against it from their next request on")
    elif meter is not None:
        lines.append("this tenant's decision jobs are checked against it from their next window on")
    return lines


def cmd_tenant_budget(args: argparse.Namespace, settings: Settings) -> int:
    """TENANT and one of --seconds N, --default, --decision-tokens N, --default-decision-tokens or --show."""
    from app.store.hume_usage import INPUT_TOKENS, SECONDS

    tenant = _tenant(args.tenant)
    meter: Meter | None = None
    value: int | None = None
    if args.seconds is not None or args.default:
        meter, value = SECONDS, args.seconds
    elif args.decision_tokens is not None or args.default_decision_tokens:
        meter, value = INPUT_TOKENS, args.decision_tokens
    print("\n".join(asyncio.run(_run(with_database(settings), tenant, meter, value))))
    return 0


def add_parsers(sub: Any) -> None:
    action = _add_parser(
        sub, "tenant-budget", help="show or set a tenant's daily budgets of Hume-metered seconds and decision tokens",
        description="A tenant's v1 jobs may spend this many Hume-metered seconds (what Hume bills: audio seconds, "
        "1/3 s per image, at least 10 s per request) per UTC day; a job that would pass it ends failed "
        "(hume_budget_exhausted), keeping what was measured. Its decision jobs may spend this many Audio "
        "Decisions input tokens per UTC day, the same way. Without an option: show the limits and today's "
        "spending.",
        command=cmd_tenant_budget, option="seconds", parse=_whole_number("seconds", "no limit"),
        option_help="the tenant's own daily limit in seconds (0: no limit)",
        default_help="remove the tenant's own limit of seconds: HUME_TENANT_DAILY_SECONDS applies",
        show_help="show the limits and today's spending (the default)",
    )  # fmt: skip
    action.add_argument(
        "--decision-tokens", type=_whole_number("tokens", "no limit"), metavar="TOKENS",
        help="the tenant's own daily limit of Audio Decisions input tokens (0: no limit)",
    )  # fmt: skip
    action.add_argument(
        "--default-decision-tokens", action="store_true",
        help="remove the tenant's own limit of decision tokens: HUME_TENANT_DAILY_DECISION_TOKENS applies",
    )  # fmt: skip
    add_retention_parser(sub)


def _kept(days: int) -> str:
    return "for good" if days == 0 else f"{days} days (dropped a whole UTC month at a time once all of it is older)"


async def _run_retention(settings: Settings, tenant: str, change: bool, days: int | None) -> list[str]:
    from app.store import prediction_partitions

    default = settings.prediction_retention_days
    async with one_session(settings) as session:
        if change:
            await prediction_partitions.set_retention(session, tenant, days)
        stored = await prediction_partitions.storage(session, tenant, default_days=default)
    whose = "its own" if stored.override else "PREDICTION_RETENTION_DAYS"
    lines = [f"tenant {tenant!r}: predictions kept {_kept(stored.days)} ({whose}; the default "
             f"PREDICTION_RETENTION_DAYS is {_kept(default)})"]  # fmt: skip
    months = ", ".join(f"{m:%Y-%m}" for m in stored.months) or "none"
    lines.append(f"months stored (UTC): {months}")
    if change:
        lines.append("applied by the worker's hourly prune: months past it are dropped, their jobs' summaries stay")
    return lines


cmd_tenant_retention = _command(_run_retention, "days")


def add_retention_parser(sub: Any) -> None:
    _add_parser(
        sub, "tenant-retention", help="show or set how long a tenant's predictions are kept",
        description="A tenant's predictions are stored a UTC month per partition; the worker's hourly prune drops "
        "a month once all of it is older than the tenant's retention (PREDICTION_RETENTION_DAYS, or the "
        "tenant's own), never deleting rows one by one. Jobs that had predictions there answer 410 "
        "predictions_expired for them; their summaries stay. Without an option: show the retention and the "
        "months stored.",
        command=cmd_tenant_retention, option="days", parse=_whole_number("days", "for good"),
        option_help="the tenant's own retention in days (0: for good)",
        default_help="remove the tenant's own: the setting applies",
        show_help="show the retention and the months stored (the default)",
    )  # fmt: skip
