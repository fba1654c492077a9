"""EVI chat history (``GET /v0/evi/chats``, ``GET /v0/evi/chats/{id}``) and simulated chats.

A simulated chat (``POST /_emulator/evi/chats``) gets user/agent events with 48 prosody
scores in ``emotion_features`` and fires signed ``chat_started``/``chat_ended`` webhooks.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .callbacks import post_with_retries
from .labels import EMOTIONS_48
from .media import stable_hash
from .records import Chat
from .responses import emu, json, read_json
from .state import EmulatorState
from .transcript import make_transcript
from .webhooks import signed_headers

Json = dict[str, Any]
END_REASONS = ("USER_ENDED", "USER_TIMEOUT", "INACTIVITY_TIMEOUT", "MAX_DURATION_TIMEOUT", "SILENCE_TIMEOUT", "ERROR")

_AGENT_LINES = (
    "I hear you. Tell me more about that.",
    "That sounds like it mattered a lot to you.",
    "Thanks for sharing that with me.",
    "How did that make you feel?",
    "I'm glad you brought that up.",
    "Let's think about what might help next.",
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _emotion_features(rng: random.Random) -> str:
    """EVI stores prosody scores as a JSON string keyed by the 48 emotion names."""
    hot = {rng.randrange(48) for _ in range(3)}
    return orjson.dumps(
        {
            name: (0.2 + 0.6 * rng.random()) if i in hot else 0.01 + 0.15 * rng.random() ** 2
            for i, name in enumerate(EMOTIONS_48)
        }
    ).decode()


def build_chat(spec: Json, seed: int, now_ms: int) -> Chat:
    """A finished (or, with ``active``, ongoing) chat of ``turns`` user/agent exchanges."""
    rng = random.Random(seed)
    turns = max(1, min(int(spec.get("turns") or 4), 500))
    duration_s = float(spec.get("duration_s") or turns * 9.0)
    start = now_ms - int(duration_s * 1000)
    chat = Chat(
        id=str(spec.get("chat_id") or _uuid(rng)),
        chat_group_id=str(spec.get("chat_group_id") or _uuid(rng)),
        start_timestamp=start,
        config_id=spec.get("config_id"),
        custom_session_id=spec.get("custom_session_id"),
        resumed=bool(spec.get("chat_group_id")),
    )
    words = make_transcript(seed, duration_s, 1).words
    per_turn = max(1, math.ceil(len(words) / turns))
    step_ms = int(duration_s * 1000 / (turns * 2 + 1))
    t = start
    chat.events.append(
        {
            "id": _uuid(rng),
            "chat_id": chat.id,
            "timestamp": t,
            "role": "SYSTEM",
            "type": "SYSTEM_PROMPT",
            "message_text": "You are a warm, attentive assistant.",
            "emotion_features": None,
            "metadata": None,
            "related_event_id": None,
        }
    )
    for turn in range(turns):
        t += step_ms
        said = " ".join(w.text for w in words[turn * per_turn : (turn + 1) * per_turn]) or "Hello?"
        user_id = _uuid(rng)
        chat.events.append(
            {
                "id": user_id,
                "chat_id": chat.id,
                "timestamp": t,
                "role": "USER",
                "type": "USER_MESSAGE",
                "message_text": said,
                "emotion_features": _emotion_features(rng),
                "metadata": None,
                "related_event_id": None,
            }
        )
        t += step_ms
        agent_id = _uuid(rng)
        chat.events.append(
            {
                "id": agent_id,
                "chat_id": chat.id,
                "timestamp": t,
                "role": "AGENT",
                "type": "AGENT_MESSAGE",
                "message_text": _AGENT_LINES[rng.randrange(len(_AGENT_LINES))],
                "emotion_features": None,
                "metadata": None,
                "related_event_id": None,
            }
        )
        # As Hume does: the assistant's expression scores come in their own event pointing back to
        # the assistant message (the SDK: related_event_id is "only seen on ASSISTANT_PROSODY events").
        chat.events.append(
            {
                "id": _uuid(rng),
                "chat_id": chat.id,
                "timestamp": t,
                "role": "AGENT",
                "type": "ASSISTANT_PROSODY",
                "message_text": None,
                "emotion_features": _emotion_features(rng),
                "metadata": None,
                "related_event_id": agent_id,
            }
        )
    if not spec.get("active"):
        end_reason = str(spec.get("end_reason") or "USER_ENDED")
        end_chat(chat, end_reason, max(t + step_ms, now_ms))
    return chat


def end_chat(chat: Chat, reason: str, at_ms: int) -> None:
    chat.end_timestamp = at_ms
    chat.status = reason
    chat.events.append(
        {
            "id": str(uuid.uuid4()),
            "chat_id": chat.id,
            "timestamp": at_ms,
            "role": "SYSTEM",
            "type": "CHAT_END_MESSAGE",
            "message_text": None,
            "emotion_features": None,
            "metadata": None,
            "related_event_id": None,
        }
    )


def seed_chats(state: EmulatorState) -> None:
    """A few finished chats so a fresh emulator has history to list (fixed ids across restarts)."""
    now = int(time.time() * 1000)
    for i in range(state.config.seed_evi_chats):
        chat = build_chat(
            {"turns": 3 + i}, stable_hash("seed-chat", str(i)), now - (state.config.seed_evi_chats - i) * 3_600_000
        )
        state.chats[chat.id] = chat


# ---------------------------------------------------------------- webhooks


def _started_payload(chat: Chat) -> Json:
    return {
        "event_name": "chat_started",
        "chat_group_id": chat.chat_group_id,
        "chat_id": chat.id,
        "config_id": chat.config_id,
        "start_time": chat.start_timestamp,
        "chat_start_type": "resumed_chat_group" if chat.resumed else "new_chat_group",
        "caller_number": None,
        "custom_session_id": chat.custom_session_id,
    }


def _ended_payload(chat: Chat) -> Json:
    end = chat.end_timestamp or int(time.time() * 1000)
    return {
        "event_name": "chat_ended",
        "chat_group_id": chat.chat_group_id,
        "chat_id": chat.id,
        "config_id": chat.config_id,
        "end_time": end,
        "duration_seconds": max(0, round((end - chat.start_timestamp) / 1000)),
        "end_reason": chat.status,
        "caller_number": None,
        "custom_session_id": chat.custom_session_id,
    }


async def send_webhook(state: EmulatorState, url: str | None, payload: Json) -> None:
    if not url:
        return
    body = orjson.dumps(payload)
    headers = signed_headers(body, state.config.effective_signing_key)
    await post_with_retries(
        state, "evi_webhook", url, body, headers=headers, ref=f"{payload['event_name']}:{payload['chat_id']}"
    )


async def _send_lifecycle(state: EmulatorState, chat: Chat, url: str | None, started: bool, ended: bool) -> None:
    # Sequential, so a receiver always sees chat_started before chat_ended.
    if started:
        await send_webhook(state, url, _started_payload(chat))
    if ended:
        await send_webhook(state, url, _ended_payload(chat))


# ---------------------------------------------------------------- routes


def _bad(message: str) -> Response:
    return json({"code": "bad_request", "error": "Bad Request", "message": message}, status_code=400)


def _paging(request: Request) -> tuple[int, int, bool] | Response:
    q = request.query_params
    try:
        page_number = int(q.get("page_number") or 0)
        page_size = int(q.get("page_size") or 10)
    except ValueError:
        return _bad("page_number and page_size must be integers")
    if page_number < 0:
        return _bad("page_number must be at least 0")
    if not 1 <= page_size <= 100:
        return _bad("page_size must be between 1 and 100")
    ascending = (q.get("ascending_order") or "true").lower() != "false"
    return page_number, page_size, ascending


def _page(items: list[Json], page_number: int, page_size: int) -> tuple[list[Json], int]:
    total_pages = math.ceil(len(items) / page_size)
    return items[page_number * page_size : (page_number + 1) * page_size], total_pages


async def list_chats(request: Request) -> Response:
    paging = _paging(request)
    if isinstance(paging, Response):
        return paging
    page_number, page_size, ascending = paging
    chats = sorted(emu(request).chats.values(), key=lambda c: c.start_timestamp, reverse=not ascending)
    config_id = request.query_params.get("config_id")
    status = request.query_params.get("status")
    chats = [
        c for c in chats if (config_id is None or c.config_id == config_id) and (status is None or c.status == status)
    ]
    page, total = _page([c.summary() for c in chats], page_number, page_size)
    return json(
        {
            "chats_page": page,
            "page_number": page_number,
            "page_size": page_size,
            "total_pages": total,
            "pagination_direction": "ASC" if ascending else "DESC",
        }
    )


async def list_chat_events(request: Request) -> Response:
    chat = emu(request).chats.get(request.path_params["id"])
    if chat is None:
        return json(
            {"code": "not_found", "error": "Not Found", "message": f"Chat {request.path_params['id']} not found"},
            status_code=404,
        )
    paging = _paging(request)
    if isinstance(paging, Response):
        return paging
    page_number, page_size, ascending = paging
    events = chat.events if ascending else list(reversed(chat.events))
    page, total = _page(events, page_number, page_size)
    summary = chat.summary()
    summary.pop("event_count")
    return json(
        {
            **summary,
            "events_page": page,
            "page_number": page_number,
            "page_size": page_size,
            "total_pages": total,
            "pagination_direction": "ASC" if ascending else "DESC",
        }
    )


async def create_chat(request: Request) -> Response:
    """Control: simulate a chat and fire its webhooks (to ``webhook_url`` or the configured URL)."""
    state = emu(request)
    spec: Any = await read_json(request) or {}
    if not isinstance(spec, dict):
        return json({"error": "body must be a JSON object"}, status_code=400)
    end_reason = spec.get("end_reason")
    if end_reason is not None and end_reason not in END_REASONS:
        return json({"error": f"end_reason must be one of {', '.join(END_REASONS)}"}, status_code=400)
    seed = stable_hash("chat", str(spec.get("seed")) if spec.get("seed") is not None else str(uuid.uuid4()))
    chat = build_chat(spec, seed, int(time.time() * 1000))
    state.chats[chat.id] = chat
    chat.webhook_url = spec.get("webhook_url")
    url = chat.webhook_url or state.config.evi_webhook_url
    if spec.get("send_webhooks", True):
        state.spawn(_send_lifecycle(state, chat, url, started=True, ended=chat.status != "ACTIVE"))
    return json(chat.summary(), status_code=201)


async def end_active_chat(request: Request) -> Response:
    """Control: end an ACTIVE chat and fire ``chat_ended``."""
    state = emu(request)
    chat = state.chats.get(request.path_params["id"])
    if chat is None:
        return json({"error": "chat not found"}, status_code=404)
    if chat.status != "ACTIVE":
        return json({"error": "chat already ended"}, status_code=409)
    spec: Any = await read_json(request) or {}
    reason = str(spec.get("end_reason") or "USER_ENDED") if isinstance(spec, dict) else "USER_ENDED"
    if reason not in END_REASONS:
        return json({"error": f"end_reason must be one of {', '.join(END_REASONS)}"}, status_code=400)
    end_chat(chat, reason, int(time.time() * 1000))
    given = spec.get("webhook_url") if isinstance(spec, dict) else None
    url = given or chat.webhook_url or state.config.evi_webhook_url
    state.spawn(_send_lifecycle(state, chat, url, started=False, ended=True))
    return json(chat.summary())


routes = [
    Route("/v0/evi/chats", list_chats, methods=["GET"]),
    Route("/v0/evi/chats/{id}", list_chat_events, methods=["GET"]),
    Route("/_emulator/evi/chats", create_chat, methods=["POST"]),
    Route("/_emulator/evi/chats/{id}/end", end_active_chat, methods=["POST"]),
]
