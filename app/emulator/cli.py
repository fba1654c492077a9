"""``python -m app emulator``: serve the emulator standalone."""

from __future__ import annotations

import argparse
import socket

import uvicorn
from starlette.applications import Starlette

from .config import EmulatorConfig
from .origins import Origin
from .server import create_app


def _rate(value: str) -> int | None:
    try:
        rate = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if rate < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return rate or None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number of seconds, 0 or more")
    return seconds


def _positive_seconds(value: str) -> float:
    seconds = _seconds(value)
    if seconds == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app emulator", description="Offline Hume AI API emulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--port", type=int, default=8001, help="the stand-in for https://api.hume.ai (tokens, TTS, EVI, batch)"
    )
    p.add_argument(
        "--cloud-port",
        type=int,
        default=None,
        help="the stand-in for https://api.cloud.hume.ai (v1); default: PORT + 1",
    )
    p.add_argument(
        "--one-origin",
        action="store_true",
        help="serve every API on PORT alone, as one compatible server (Hume itself uses two hosts)",
    )
    p.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    p.add_argument("--secret-key", default=None, help="secret for /oauth2-cc/token (default: any)")
    p.add_argument("--realistic", action="store_true", help="jobs take 30-50%% of media length, in real time")
    p.add_argument("--time-scale", type=float, default=None, help="simulated seconds per real second")
    p.add_argument("--evi-webhook-url", default=None, help="where to POST signed EVI webhooks")
    p.add_argument("--evi-signing-key", default=None, help="HMAC key for EVI webhooks (default: the API key)")
    p.add_argument(
        "--requests-per-minute",
        type=_rate,
        default=EmulatorConfig.requests_per_minute,
        metavar="N",
        help="429 past N requests per organization (API key) per sliding minute, as Hume limits them "
        "(default %(default)s, Hume's; 0: no limit)",
    )
    p.add_argument(
        "--v1-not-enabled-key",
        action="append",
        default=[],
        metavar="KEY",
        help="answer this API key's v1 requests 403 forbidden, as for an organization outside v1's limited "
        "release (repeatable)",
    )
    p.add_argument(
        "--no-payment-method-key",
        action="append",
        default=[],
        metavar="KEY",
        help="answer this API key's Audio Decisions requests 402, as for an organization with no payment method "
        "on file (repeatable)",
    )
    p.add_argument(
        "--decisions-not-enabled-key",
        action="append",
        default=[],
        metavar="KEY",
        help="answer this API key's Audio Decisions requests 403, as for an organization without access (repeatable)",
    )
    p.add_argument(
        "--decisions-run-delay",
        type=_seconds,
        default=EmulatorConfig.decisions_run_delay_s,
        metavar="S",
        help="an Audio Decisions run appears in the runs endpoints S seconds after its request (default %(default)s s)",
    )
    p.add_argument(
        "--realtime-rate-slack",
        type=_seconds,
        default=EmulatorConfig.realtime_rate_slack_s,
        metavar="S",
        help="how far a realtime session's media may run ahead of the clock before frames get rate_limited "
        "(Hume: 1 s of audio per second, 3 frames per second; default %(default)s s)",
    )
    p.add_argument(
        "--realtime-idle-timeout",
        type=_positive_seconds,
        default=EmulatorConfig.realtime_idle_timeout_s,
        metavar="S",
        help="end a realtime session that sends nothing for S seconds (idle_timeout; default %(default)s s)",
    )
    p.add_argument("--log-level", default="info")
    return p


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    time_scale = args.time_scale if args.time_scale is not None else (1.0 if args.realistic else None)
    base = EmulatorConfig()
    return EmulatorConfig(
        time_scale=time_scale if time_scale is not None else base.time_scale,
        api_key=args.api_key,
        secret_key=args.secret_key,
        realistic=args.realistic,
        evi_webhook_url=args.evi_webhook_url,
        evi_signing_key=args.evi_signing_key,
        requests_per_minute=args.requests_per_minute,
        v1_not_enabled_keys=frozenset(args.v1_not_enabled_key),
        no_payment_method_keys=frozenset(args.no_payment_method_key),
        decisions_not_enabled_keys=frozenset(args.decisions_not_enabled_key),
        decisions_run_delay_s=args.decisions_run_delay,
        realtime_rate_slack_s=args.realtime_rate_slack,
        realtime_idle_timeout_s=args.realtime_idle_timeout,
    )


def serve(app: Starlette, host: str, ports: dict[int, Origin | None], log_level: str) -> None:
    """Serve `app` on one socket per port; each port's origin (None: every API) is told to the app."""
    sockets = []
    for port, origin in ports.items():
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            flag = "--cloud-port" if origin == "cloud" else "--port"
            raise SystemExit(f"error: cannot listen on {host}:{port} ({exc.strerror}): choose another {flag}") from None
        sockets.append(sock)
        if origin is not None:
            address, bound = sock.getsockname()[:2]
            app.state.emu.origins[(address, bound)] = origin
    # uvicorn handles SIGINT/SIGTERM itself and shuts down gracefully.
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=sockets)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    voice = f"http://{args.host}:{args.port}"
    ports: dict[int, Origin | None]
    if args.one_origin:
        cloud, ports = voice, {args.port: None}
    else:
        cloud_port = args.cloud_port if args.cloud_port is not None else args.port + 1
        cloud, ports = f"http://{args.host}:{cloud_port}", {args.port: "voice", cloud_port: "cloud"}
    print(f"Hume emulator serving api.hume.ai (tokens, TTS, EVI, batch) on {voice}", flush=True)
    print(f"                  and api.cloud.hume.ai (v1, Audio Decisions) on {cloud}", flush=True)
    print(f"  HUME_VOICE_URL={voice} HUME_CLOUD_URL={cloud} HUME_API_KEY={config.api_key or 'any-non-empty-key'}",
          flush=True)  # fmt: skip
    rate = config.requests_per_minute
    print(f"  {rate or 'no'} requests per minute per API key ({'429 past it; ' if rate else ''}"
          "--requests-per-minute to change)", flush=True)  # fmt: skip
    try:
        serve(create_app(config), args.host, ports, args.log_level)
    except KeyboardInterrupt:
        pass
    return 0
