"""`python -m app hume check [--spend]`: what Hume serves us today (app/hume/catalog.py), with the live API we
use called once with the smallest request it takes, and the retired ones reported without a call.
`--decisions` checks Audio Decisions instead: Hume's raw answers next to what we read (app/hume/decisions_check.py)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from app.commands.errors import FAILED, CommandError
from app.config import Settings


def _report(settings: Settings, spend: bool) -> tuple[list[str], bool, bool]:
    """The printed lines, whether every live API we use passed, and whether one was left uncalled."""
    from app.hume import api_check, catalog

    probe = asyncio.run(api_check.check_v1(settings, spend=spend))
    lines = [f"Hume APIs as of {catalog.AS_OF.isoformat()} (app/hume/catalog.py):", ""]
    for api in catalog.CATALOG:
        lines.append(f"{api.name}: {api.status}")
        host = f"{api.host.url(settings)} ({api.host.setting})"
        if api is catalog.V1:
            lines.append(f"  host            {host}")
            if not probe.called:
                lines.append(f"  {probe.problem}")
                continue
            lines.append(f"  call            {api_check.CALL}")
            lines.append(f"  authentication  {probe.authentication}")
            lines.append(f"  latency         {probe.latency_ms:.0f} ms")
            if probe.authentication == "ok":
                shape = "matches the SDK's AudioFileResponse" if not probe.missing else "does NOT match the SDK's"
                lines.append(f"  shape           {shape} (HUME-V1-FACTS §6)")
                lines.append(f"  unknown fields  {', '.join(probe.unknown) or 'none'}")
                lines.append(f"  missing fields  {', '.join(probe.missing) or 'none'}")
            lines.append(f"  result          {'ok' if probe.ok else 'FAILED: ' + (probe.problem or 'unknown')}")
        elif not api.uses:
            lines.append(f"  host            {host}")
            lines.append("  not called: this service does not use it yet")
        elif catalog.retired_at_hume(api, settings):
            lines.append(f"  not called: retired at Hume ({api.source}); here: {api.here}")
        elif api.state == "retired":
            lines.append(f"  not called: retired at Hume; {host} is a compatible server that may still serve it")
        else:
            lines.append(f"  host            {host}")
            lines.append(f"  not called: its docs are gone ({api.source}); {api.here}")
    return lines, probe.ok, not probe.called


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _decisions_report(settings: Settings, spend: bool) -> tuple[list[str], bool, bool]:
    """The printed lines, whether Hume's answers could all be read, and whether the billed call was skipped."""
    from app.hume import decisions_check

    probe = asyncio.run(decisions_check.check_decisions(settings, spend=spend))
    lines = ["Audio Decisions (assumptions: app/hume/decisions_contract.py)", f"  host            {probe.url}"]
    if not probe.called:
        lines.append(f"  {probe.problem}")
        return lines, False, True
    if probe.estimate_problem is not None:
        lines.append(f"  estimate        not read: {probe.estimate_problem}")
    else:
        lines.append(f"  estimate        {probe.estimate} input tokens; Hume sent {_json(probe.estimate_raw)}")
    lines.append(f"  call            {decisions_check.CALL}")
    lines.append(f"  authentication  {probe.authentication}")
    lines.append(f"  latency         {probe.latency_ms:.0f} ms")
    if probe.authentication == "ok" and probe.raw is not None:
        lines.append(f"  run_id          {probe.run_id}")
        lines.append(f"  input tokens    {probe.input_tokens} (received.input_tokens)")
        lines.append(f"  unknown fields  {', '.join(probe.unknown) or 'none'} (outside the answers)")
        for q in probe.questions:
            lines.append(f"  {q.question_id} ({q.primitive})")
            lines.append(f"    Hume sent     {_json(q.raw)}")
            lines.append(f"    we read       {_json(q.parsed)}")
            lines.append(f"    unknown       {', '.join(q.unknown) or 'none'}")
            lines.append(f"    unread        {', '.join(q.missing) or 'none'}")
    lines.append(f"  result          {'ok' if probe.ok else 'FAILED: ' + (probe.problem or 'unknown')}")
    return lines, probe.ok, False


def cmd_hume(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "decisions", False):
        lines, ok, uncalled = _decisions_report(settings, args.spend)
        print("\n".join(lines), flush=True)
        if uncalled:
            raise CommandError("Audio Decisions was not checked: each request is billed; pass --spend to check it")
        return 0 if ok else FAILED
    lines, ok, uncalled = _report(settings, args.spend)
    print("\n".join(lines), flush=True)
    if uncalled:
        raise CommandError("v1 was not checked: Hume bills 10 s per run; pass --spend to check it anyway")
    return 0 if ok else FAILED


def add_parsers(sub: Any) -> None:
    hume = sub.add_parser(
        "hume", help="Hume's APIs: `hume check` calls the live one we use and reports the retired ones",
        description="Hume's APIs as this service uses them (app/hume/catalog.py).",
    )  # fmt: skip
    actions = hume.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="call v1 with one second of audio: host, authentication, latency, response shape",
        description="Call each live Hume API this service uses with the smallest request it takes (v1: one second "
        "of 16 kHz mono WAV) and print per API its host, authentication, latency and whether the answer has the "
        "shape we parse; retired APIs are reported without a call. Exit code 1 when a live API fails. Hume bills "
        "at least 10 s per v1 run, so against Hume's own host nothing is sent without --spend.",
    )  # fmt: skip
    check.add_argument("--spend", action="store_true", help="allow the billed call against Hume itself (10 s)")
    check.add_argument(
        "--decisions", action="store_true",
        help="check Audio Decisions instead: one question of each primitive, Hume's raw answer next to what we read",
    )  # fmt: skip
    check.set_defaults(func=cmd_hume)
