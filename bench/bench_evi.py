"""EVI webhooks over real HTTP, the service and the emulator each in a process of its own: what accepting a
signed delivery costs (verify, job upsert, inbox row and queued task in one transaction) against a bare
endpoint (/healthz) of the same app; and a long chat from chat_ended to a completed job (history pulled
through the SDK, COPY ingest) against fetching that same history alone through the SDK."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson
from hume import HumeClient

from app.emulator.testing import EmulatorProcess
from app.hume.signatures import signed_headers
from app.store import api_keys
from bench.__main__ import Context
from bench.bench_tokens import create_key, p50
from bench.service_process import serve

EMULATOR_KEY = "bench-hume-key"
SIGNING_KEY = "bench-signing-key"
DELIVERIES = 1000
TURNS = 250  # 500 scored utterances: a long support call
CHATS = 5
EVI_PATH = "/v1/webhooks/hume/evi"


def _hume(emulator: EmulatorProcess) -> dict[str, str]:
    return {"HUME_API_KEY": EMULATOR_KEY, "HUME_BASE_URL": emulator.base_url, "HUME_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


def _timed(call: Callable[[], httpx.Response], expect: int) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == expect, response.text
    return elapsed


def _started(i: int) -> bytes:
    return orjson.dumps(
        {"event_name": "chat_started", "chat_group_id": f"g-{i}", "chat_id": f"bench-chat-{i}",
         "start_time": int(time.time() * 1000), "chat_start_type": "new_chat_group"}
    )  # fmt: skip


def _accept(ctx: Context, emulator: EmulatorProcess) -> None:
    with ctx.database() as url:
        with serve(url, _hume(emulator)) as server_url, httpx.Client(base_url=server_url, timeout=30) as client:
            bodies = [_started(i) for i in range(DELIVERIES)]

            def post(body: bytes) -> httpx.Response:
                return client.post(EVI_PATH, content=body, headers=signed_headers(body, SIGNING_KEY, now=time.time()))

            for _ in range(50):
                client.get("/healthz")
            accept: list[float] = []
            health: list[float] = []
            for block in range(4):  # interleaved blocks: drift hits both series alike
                chunk = bodies[block * DELIVERIES // 4 : (block + 1) * DELIVERIES // 4]
                accept += [_timed(lambda b=body: post(b), 202) for body in chunk]  # type: ignore[misc]
                health += [_timed(lambda: client.get("/healthz"), 200) for _ in chunk]
            replay = [_timed(lambda b=body: post(b), 200) for body in bodies[:200]]  # type: ignore[misc]
    base = p50(health)
    ctx.report("evi_webhook_accept_p50", p50(accept), "ms", baseline=base, baseline_name="healthz_p50")
    ctx.report("evi_webhook_replay_p50", p50(replay), "ms", baseline=base, baseline_name="healthz_p50")


def _ingest(ctx: Context, emulator: EmulatorProcess) -> None:
    chats = [emulator.create_chat(turns=TURNS, seed=f"bench-{i}", send_webhooks=False) for i in range(CHATS)]
    sdk = HumeClient(api_key=EMULATOR_KEY, base_url=emulator.base_url)
    fetch: list[float] = []
    for chat in chats:
        started = time.perf_counter()
        events = list(sdk.empathic_voice.chats.list_chat_events(chat["id"], page_size=100))
        fetch.append((time.perf_counter() - started) * 1000)
        assert len(events) == 3 * TURNS + 2  # system prompt, per turn: user, agent, assistant prosody; end
    with ctx.database() as url:
        with serve(
            url, {**_hume(emulator), "RUN_WORKER": "true"}
        ) as server_url:  # the worker ingests, as in `make run`
            key = create_key(url, list(api_keys.SCOPES))
            client = httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            ingest: list[float] = []
            for chat in chats:
                body = orjson.dumps(
                    {"event_name": "chat_ended", "chat_group_id": chat["chat_group_id"], "chat_id": chat["id"],
                     "end_time": chat["end_timestamp"], "duration_seconds": TURNS * 9, "end_reason": "USER_ENDED"}
                )  # fmt: skip
                started = time.perf_counter()
                response = client.post(
                    EVI_PATH, content=body, headers=signed_headers(body, SIGNING_KEY, now=time.time())
                )
                assert response.status_code == 202, response.text
                while True:
                    items = client.get("/v1/jobs", params={"kind": "evi_chat", "hume_id": chat["id"]}).json()["items"]
                    if items and items[0]["status"] == "completed":
                        break
                    time.sleep(0.002)
                ingest.append((time.perf_counter() - started) * 1000)
                assert items[0]["num_predictions"] == 2 * TURNS
            client.close()
    ctx.report(
        f"evi_chat_{2 * TURNS}_utterances_webhook_to_completed_p50", p50(ingest), "ms",
        baseline=p50(fetch), baseline_name="sdk_history_fetch_p50",
    )  # fmt: skip


def run(ctx: Context) -> None:
    with EmulatorProcess(api_key=EMULATOR_KEY, evi_signing_key=SIGNING_KEY) as emulator:
        _accept(ctx, emulator)
        _ingest(ctx, emulator)
