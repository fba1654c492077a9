"""EVI (Hume's voice interface): webhook payloads, chat history through the SDK, and prediction rows.

The only code that calls `client.empathic_voice.chats.*`. Payloads are validated against the SDK's own
types (HUME.md 2.2). EVI measures prosody on every user utterance and keeps the 48 scores as a JSON
string in each chat event's `emotion_features`; those become `prosody` prediction rows, grouped as
`user` or `assistant`, timed relative to the chat's start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from hume import AsyncHumeClient
from hume.empathic_voice.types import (
    ReturnChatEvent,
    WebhookEventChatEnded,
    WebhookEventChatStarted,
    WebhookEventToolCall,
)
from pydantic import ValidationError

from app.config import HUME_VOICE_URL
from app.core.prediction_rows import EmotionScore, PredictionRow
from app.hume.call_timing import timed_client
from app.hume.gateway import translate

MODEL = "prosody"
USER = "user"
ASSISTANT = "assistant"
# Ids end up in dedup keys under a btree index (max ~2.7 kB per entry): longer ones are refused up front.
MAX_ID_CHARS = 256
# Larger pages mean fewer round trips; Hume caps page_size at 100.
PAGE_SIZE = 100
_OPTIONS: Any = {"max_retries": 2}

Known = WebhookEventChatStarted | WebhookEventChatEnded | WebhookEventToolCall
_TYPES: dict[str, type[Known]] = {
    "chat_started": WebhookEventChatStarted,
    "chat_ended": WebhookEventChatEnded,
    "tool_call": WebhookEventToolCall,
}


class EviPayloadError(ValueError):
    """The body is not an EVI webhook event."""


@dataclass(frozen=True)
class UnknownEvent:
    """An event name this service does not know yet (Hume may add some): stored, not processed."""

    event_name: str
    chat_id: str


WebhookEvent = Known | UnknownEvent


def _check_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EviPayloadError(f"{field} must be a non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise EviPayloadError(f"{field} is longer than {MAX_ID_CHARS} characters")
    return value


def parse_webhook(body: bytes | Any) -> WebhookEvent:
    """The verified body (raw bytes, or already decoded JSON) as the SDK's event type; raises
    EviPayloadError naming what is wrong."""
    if isinstance(body, bytes | bytearray):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise EviPayloadError("body is not JSON") from None
    else:
        data = body
    if not isinstance(data, dict):
        raise EviPayloadError("body must be a JSON object")
    name = data.get("event_name")
    if not isinstance(name, str) or not name:
        raise EviPayloadError("event_name must be a non-empty string")
    chat_id = _check_id(data.get("chat_id"), "chat_id")
    kind = _TYPES.get(name)
    if kind is None:
        return UnknownEvent(event_name=name[:64], chat_id=chat_id)
    try:
        event = kind.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise EviPayloadError(f"{name}: {where}: {first['msg']}") from None
    if isinstance(event, WebhookEventToolCall):
        _check_id(event.tool_call_message.tool_call_id, "tool_call_message.tool_call_id")
    return event


def event_name(event: WebhookEvent) -> str:
    if isinstance(event, UnknownEvent):
        return event.event_name
    return {WebhookEventChatStarted: "chat_started", WebhookEventChatEnded: "chat_ended"}.get(type(event), "tool_call")


def dedup_key(event: WebhookEvent, body: bytes) -> str:
    """One key per real-world event: a chat starts and ends once; tool calls are told apart by their id."""
    name = event_name(event)
    if isinstance(event, WebhookEventToolCall):
        return f"evi:{event.chat_id}:tool_call:{event.tool_call_message.tool_call_id}"
    if isinstance(event, UnknownEvent):
        return f"evi:{event.chat_id}:{name}:{hashlib.sha256(body).hexdigest()[:32]}"
    return f"evi:{event.chat_id}:{name}"


def to_ms(value: int) -> int:
    """Unix milliseconds. The SDK documents chat event timestamps in seconds while Hume's examples and
    webhooks use milliseconds; a value below 10^11 cannot be milliseconds of any date after 1973."""
    return value if value >= 100_000_000_000 else value * 1000


@dataclass(frozen=True)
class ChatHistory:
    """A chat as EVI's history API reports it, with every event in chronological order."""

    chat_id: str
    chat_group_id: str
    status: str
    start_ms: int
    end_ms: int | None
    config_id: str | None
    events: list[ReturnChatEvent]


@dataclass(frozen=True)
class ChatInfo:
    chat_id: str
    chat_group_id: str
    status: str
    start_ms: int
    end_ms: int | None
    config_id: str | None


def _last_page(page_number: int, total_pages: int) -> bool:
    # The SDK's pager asks for the next page until one comes back empty; the response already says how
    # many there are, which saves a request per chat and never asks Hume for a page past the end.
    return page_number + 1 >= total_pages


async def chat_history(client: AsyncHumeClient, chat_id: str) -> ChatHistory:
    """All of a chat's events (every page); Hume errors come out as app.hume.errors types."""
    try:
        pager = await client.empathic_voice.chats.list_chat_events(
            chat_id, page_size=PAGE_SIZE, ascending_order=True, request_options=_OPTIONS
        )
        events: list[ReturnChatEvent] = []
        async for page in pager.iter_pages():
            events.extend(page.items or [])
            if _last_page(page.response.page_number, page.response.total_pages):
                break
    except Exception as exc:
        raise translate(exc, what=f"EVI chat {chat_id}", batch=False) from exc
    head = pager.response
    return ChatHistory(
        chat_id=head.id,
        chat_group_id=head.chat_group_id,
        status=str(head.status),
        start_ms=to_ms(head.start_timestamp),
        end_ms=to_ms(head.end_timestamp) if head.end_timestamp else None,
        config_id=head.config.id if head.config is not None else None,
        events=sorted(events, key=lambda e: to_ms(e.timestamp)),
    )


async def chats_since(client: AsyncHumeClient, since_ms: int) -> list[ChatInfo]:
    """Chats that started at or after `since_ms`, newest first (listing stops at the first older one)."""
    found: list[ChatInfo] = []
    try:
        pager = await client.empathic_voice.chats.list_chats(
            page_size=PAGE_SIZE, ascending_order=False, request_options=_OPTIONS
        )
        async for page in pager.iter_pages():
            last = _last_page(page.response.page_number, page.response.total_pages)
            for chat in page.items or []:
                start = to_ms(chat.start_timestamp)
                if start < since_ms:
                    return found
                found.append(
                    ChatInfo(
                        chat_id=chat.id,
                        chat_group_id=chat.chat_group_id,
                        status=str(chat.status),
                        start_ms=start,
                        end_ms=to_ms(chat.end_timestamp) if chat.end_timestamp else None,
                        config_id=chat.config.id if chat.config is not None else None,
                    )
                )
            if last:
                break
    except Exception as exc:
        raise translate(exc, what="EVI chat list", batch=False) from exc
    return found


class EviClient:
    """The process's EVI client: chat history and chat listings through the SDK, on a client of its own
    (voice-era host, HUME_VOICE_URL), its requests counted as `evi`."""

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout_s: float = 60.0) -> None:
        self._http = timed_client("evi", timeout_s=timeout_s)
        self.client = AsyncHumeClient(
            api_key=api_key, base_url=(base_url or HUME_VOICE_URL).rstrip("/"), httpx_client=self._http
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat_history(self, chat_id: str) -> ChatHistory:
        return await chat_history(self.client, chat_id)

    async def chats_since(self, since_ms: int) -> list[ChatInfo]:
        return await chats_since(self.client, since_ms)


def _scores(features: str) -> list[EmotionScore]:
    try:
        data = orjson.loads(features)
    except orjson.JSONDecodeError:
        raise ValueError("emotion_features is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("emotion_features is not a JSON object")
    scores = [
        EmotionScore(name=str(name), score=float(value))
        for name, value in data.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    if not scores:
        raise ValueError("emotion_features holds no scores")
    return scores


def _group(event: ReturnChatEvent) -> str | None:
    if event.type == "ASSISTANT_PROSODY" or event.role == "AGENT":
        return ASSISTANT
    if event.role == "USER":
        return USER
    return None


def prediction_rows(history: ChatHistory) -> tuple[list[PredictionRow], list[dict[str, Any]]]:
    """A prosody row per scored event, and the events whose scores could not be read ({file, message}).

    Assistant speech is scored either on its AGENT_MESSAGE or in a separate ASSISTANT_PROSODY event that
    points back at it; when both exist the separate one wins, so no utterance counts twice.
    """
    by_id = {e.id: e for e in history.events}
    rescored = {e.related_event_id for e in history.events if e.type == "ASSISTANT_PROSODY" and e.emotion_features}
    rows: list[PredictionRow] = []
    errors: list[dict[str, Any]] = []
    for event in history.events:
        group = _group(event)
        if not event.emotion_features or group is None or event.id in rescored:
            continue
        try:
            scores = _scores(event.emotion_features)
        except ValueError as exc:
            errors.append({"file": event.id, "message": str(exc)})
            continue
        text = event.message_text
        related = by_id.get(event.related_event_id or "")
        if not text and related is not None:
            text = related.message_text
        at = (to_ms(event.timestamp) - history.start_ms) / 1000
        extras = {"event_id": event.id, "event_type": str(event.type), "related_event_id": event.related_event_id}
        rows.append(
            PredictionRow(
                source_index=0, file=None, model=MODEL, group_id=group, frame=None,
                # History events carry one timestamp: the utterance is stored as a point in time.
                time_begin=at, time_end=at, prob=None, box=None, text=text, position_begin=None,
                position_end=None, confidence=None, speaker_confidence=None, scores=scores,
                extras=orjson.dumps(extras),
            )
        )  # fmt: skip
    return rows, errors


def event_counts(events: Iterable[ReturnChatEvent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        counts[str(event.type)] = counts.get(str(event.type), 0) + 1
    return counts


def started_details(event: WebhookEventChatStarted) -> dict[str, Any]:
    return {
        "chat_group_id": event.chat_group_id,
        "config_id": event.config_id,
        "chat_start_type": event.chat_start_type,
        "start_time_ms": event.start_time,
        "caller_number": event.caller_number,
        "custom_session_id": event.custom_session_id,
        "twilio_metadata": event.twilio_metadata,
    }


def ended_details(event: WebhookEventChatEnded) -> dict[str, Any]:
    return {
        "chat_group_id": event.chat_group_id,
        "config_id": event.config_id,
        "end_time_ms": event.end_time,
        "duration_seconds": event.duration_seconds,
        "end_reason": event.end_reason,
        "caller_number": event.caller_number,
        "custom_session_id": event.custom_session_id,
        "twilio_metadata": event.twilio_metadata,
    }


def ended_body(chat: ChatInfo) -> bytes:
    """A chat_ended payload for a chat found by listing (backfill), shaped as Hume's webhook."""
    end = chat.end_ms or chat.start_ms
    return orjson.dumps(
        {
            "event_name": "chat_ended",
            "chat_group_id": chat.chat_group_id,
            "chat_id": chat.chat_id,
            "config_id": chat.config_id,
            "end_time": end,
            "duration_seconds": max(0, round((end - chat.start_ms) / 1000)),
            "end_reason": chat.status,
        }
    )
