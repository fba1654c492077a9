"""Live sessions through the relay: SESSIONS concurrent audio sessions, each streaming 100 ms frames at real
time (1 s of audio per second, Hume's rate, HUME-V1-FACTS §4), against the emulator in a process of its own.

The relay's added latency is read as the round trip of a probe each session sends every second, a text
message the emulator answers at once (an unknown `type` gets `message_invalid` and the session goes on):
through the service (browser -> relay -> Hume -> relay -> browser) against the same sessions opened at the
emulator directly (the baseline). Memory: the service process's resident set with every session open, less
before, per session."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from app.emulator.testing import EmulatorProcess
from bench.__main__ import Context
from bench.bench_tokens import create_key
from bench.service_process import serve

EMULATOR_KEY = "bench-hume-key"
SESSIONS = int(os.environ.get("BENCH_LIVE_SESSIONS", "200"))
SECONDS = 10
FRAME_S = 0.1
FRAME = b"\x00\x10" * int(16_000 * FRAME_S)  # 100 ms of 16 kHz s16le mono
PROBE = json.dumps({"type": "bench.probe"})


def rss_kib(port: int) -> int:
    """Resident memory of the `serve` process listening on `port` (found by its PORT variable)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"PORT={port}".encode() in environ and b"serve" in (entry / "cmdline").read_bytes():
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            continue
    raise RuntimeError(f"no serve process on port {port}")


async def stream(ws: ClientConnection, probes: list[float], offset_s: float) -> None:
    """Real-time audio with a probe each second, starting `offset_s` into the frame period (browsers are not in
    step: frames of all sessions at the same instant would measure a burst's queue, not the relay); the probe's
    round trip is recorded."""
    assert json.loads(await ws.recv())["type"] == "session.created"
    await asyncio.sleep(offset_s)
    started = time.monotonic()
    sent_at: float | None = None

    async def read() -> None:
        nonlocal sent_at
        async for message in ws:
            if isinstance(message, str) and sent_at is not None and '"message_invalid"' in message:
                probes.append((time.monotonic() - sent_at) * 1000)
                sent_at = None

    reader = asyncio.create_task(read())
    for i in range(int(SECONDS / FRAME_S)):
        await asyncio.sleep(max(0.0, started + i * FRAME_S - time.monotonic()))
        await ws.send(FRAME)
        if i % 10 == 5 and sent_at is None:
            sent_at = time.monotonic()
            await ws.send(PROBE)
    await ws.send(json.dumps({"type": "session.close"}))
    await asyncio.wait_for(reader, 30)


async def sessions(urls: list[str], headers: dict[str, str] | None, during: Any = None) -> list[float]:
    probes: list[float] = []
    # Direct sessions connect as the relay does (no permessage-deflate); a browser's leg negotiates it as
    # browsers do, so its cost is counted in the relayed figure.
    options: dict[str, Any] = {"additional_headers": headers, "compression": None} if headers else {}
    opened = [await websockets.connect(url, **options) for url in urls]
    try:
        runs = asyncio.gather(*(stream(ws, probes, i * FRAME_S / len(opened)) for i, ws in enumerate(opened)))
        if during is not None:
            await asyncio.sleep(SECONDS / 2)
            during()
        await runs
    finally:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return probes


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def run(ctx: Context) -> None:
    with ctx.database() as url, EmulatorProcess(api_key=EMULATOR_KEY) as emulator:
        hume = {"HUME_API_KEY": EMULATOR_KEY, "HUME_CLOUD_URL": emulator.cloud_url, "HUME_VOICE_URL": emulator.base_url}
        direct_url = emulator.cloud_url.replace("http", "ws", 1) + "/v1/expression/audio/realtime"
        # Direct sessions before and after the relayed ones; the quicker run is the baseline (the machine is shared).
        direct = asyncio.run(sessions([direct_url] * SESSIONS, {"X-Hume-Api-Key": EMULATOR_KEY}))
        with serve(url, hume) as server_url:
            key = create_key(url, ["session"])
            with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
                tokens = [client.post("/v1/session-tokens", json={}).json() for _ in range(SESSIONS)]
            port = int(server_url.rsplit(":", 1)[1])
            before = rss_kib(port)
            during: list[int] = []
            relayed = asyncio.run(
                sessions([t["urls"]["audio"] for t in tokens], None, lambda: during.append(rss_kib(port)))
            )
        again = asyncio.run(sessions([direct_url] * SESSIONS, {"X-Hume-Api-Key": EMULATOR_KEY}))
        direct = min(direct, again, key=p99)
    added = p99(relayed) - p99(direct)
    print(
        f"(probes: direct p50 {statistics.median(direct):.1f} ms p99 {p99(direct):.1f} ms; relayed p50"
        f" {statistics.median(relayed):.1f} ms p99 {p99(relayed):.1f} ms; {len(relayed)} of {SESSIONS * SECONDS})"
    )
    ctx.report(f"live_sessions_{SESSIONS}_added_p99", added, "ms", baseline=p99(direct), baseline_name="direct_p99")
    per_session = (during[0] - before) / SESSIONS
    ctx.report("live_sessions_rss_per_session", per_session, "KiB", baseline=before, baseline_name="rss_idle_kib")
