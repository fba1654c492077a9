"""``python -m app emulator``: serve the emulator standalone."""

from __future__ import annotations

import argparse

import uvicorn

from .config import EmulatorConfig
from .server import create_app


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app emulator", description="Offline Hume AI API emulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    p.add_argument("--secret-key", default=None, help="secret for /oauth2-cc/token (default: any)")
    p.add_argument("--realistic", action="store_true", help="jobs take 30-50%% of media length, in real time")
    p.add_argument("--time-scale", type=float, default=None, help="simulated seconds per real second")
    p.add_argument("--evi-webhook-url", default=None, help="where to POST signed EVI webhooks")
    p.add_argument("--evi-signing-key", default=None, help="HMAC key for EVI webhooks (default: the API key)")
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
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    url = f"http://{args.host}:{args.port}"
    print(f"Hume emulator serving on {url}", flush=True)
    print(f"  HumeClient(api_key={config.api_key or 'any-non-empty-key'!r}, base_url={url!r})", flush=True)
    try:
        # uvicorn handles SIGINT/SIGTERM itself and shuts down gracefully.
        uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)
    except KeyboardInterrupt:
        pass
    return 0
