"""Run inside a network and mount namespace of its own (tests/e2e/test_hume_hosts.py), where /etc/hosts sends
Hume's real host names to local stand-ins: the emulator, over TLS on port 443, api.cloud.hume.ai at 127.0.0.2
and api.hume.ai at 127.0.0.3, each serving only its own APIs. The service's Hume clients are built from real
settings (a key, no URL), exactly as `build_deps` builds them, and each is called once; what each call
reached is printed as one JSON object."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
import threading
import time
import wave
from typing import Any

import orjson
import uvicorn

from app.config import Settings
from app.emulator import EmulatorConfig, create_app
from app.wiring import build_deps

CLOUD, VOICE = ("127.0.0.2", 443), ("127.0.0.3", 443)


def one_second_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x00\x00" * 16_000)
    return buffer.getvalue()


def stand_in(cert: str, key: str) -> tuple[Any, uvicorn.Server]:
    app = create_app(EmulatorConfig(api_key=os.environ["HUME_API_KEY"], secret_key=os.environ["HUME_SECRET_KEY"]))
    sockets = []
    for address, origin in ((CLOUD, "cloud"), (VOICE, "voice")):
        sock = socket.socket()
        sock.bind(address)
        sockets.append(sock)
        app.state.emu.origins[address] = origin
    server = uvicorn.Server(uvicorn.Config(app, ssl_certfile=cert, ssl_keyfile=key, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the stand-in did not start")
        time.sleep(0.01)
    return app.state.emu, server


async def calls() -> dict[str, Any]:
    settings = Settings.from_env()
    report: dict[str, Any] = {"cloud_url": settings.cloud_url, "voice_url": settings.hume_url}
    async with build_deps(settings, pool_size=1) as deps:
        measured = await deps.expression.measure_audio(one_second_wav())
        report["v1_audio_run"] = measured.run_id
        assert deps.tokens is not None
        token, _expires_in = await deps.tokens.get()
        report["token"] = bool(token)
    return report


def main() -> int:
    state, server = stand_in(sys.argv[1], sys.argv[2])
    try:
        report = asyncio.run(calls())
    finally:
        server.should_exit = True
    report["calls"] = dict(state.calls)
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
