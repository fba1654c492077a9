"""EVI payloads and chat events into prediction rows: pure functions, the SDK's own types."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hume.empathic_voice.types import ReturnChatEvent, WebhookEventChatEnded, WebhookEventToolCall

from app.hume import evi_chats as evi
from app.hume.emotions import EXPRESSIONS_48

START_MS = 1_800_000_000_000


def features(**scores: float) -> str:
    return orjson.dumps(scores or {name: i / 100 for i, name in enumerate(EXPRESSIONS_48)}).decode()


def event(i: int, role: str, kind: str, at_ms: int, **fields: Any) -> ReturnChatEvent:
    return ReturnChatEvent(chat_id="chat", id=f"e{i}", role=role, type=kind, timestamp=at_ms, **fields)


def history(*events: ReturnChatEvent, start_ms: int = START_MS) -> evi.ChatHistory:
    return evi.ChatHistory(
        chat_id="chat", chat_group_id="g", status="USER_ENDED", start_ms=start_ms, end_ms=None, config_id=None,
        events=list(events),
    )  # fmt: skip


def test_parse_webhook_gives_the_sdk_types() -> None:
    """chat_ended and tool_call bodies come back as the SDK's webhook models with their fields."""
    ended = evi.parse_webhook(
        b'{"event_name":"chat_ended","chat_group_id":"g","chat_id":"c","end_time":5,"duration_seconds":2,'
        b'"end_reason":"USER_ENDED","extra_field":1}'
    )
    assert isinstance(ended, WebhookEventChatEnded) and ended.end_reason == "USER_ENDED"
    assert evi.dedup_key(ended, b"") == "evi:c:chat_ended"
    body = orjson.dumps(
        {"event_name": "tool_call", "chat_group_id": "g", "chat_id": "c", "timestamp": 1,
         "tool_call_message": {"name": "t", "parameters": "{}", "response_required": False,
                               "tool_call_id": "call-9", "tool_type": "function"}}
    )  # fmt: skip
    call = evi.parse_webhook(body)
    assert isinstance(call, WebhookEventToolCall)
    assert evi.dedup_key(call, body) == "evi:c:tool_call:call-9"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"chat_id":"c"}', "event_name"),
        (b'{"event_name":"chat_ended","chat_id":""}', "chat_id"),
        (b'{"event_name":"chat_ended","chat_id":7}', "chat_id"),
        (b'{"event_name":"chat_ended","chat_id":"c","chat_group_id":"g"}', "chat_ended"),
        (b'{"event_name":"chat_started","chat_id":"c","chat_group_id":"g","start_time":"soon",'
         b'"chat_start_type":"new_chat_group"}', "start_time"),
    ],
)  # fmt: skip
def test_bad_payloads_raise_one_error_naming_the_problem(body: bytes, message: str) -> None:
    """Anything that is not an EVI event raises EviPayloadError (a 422), never another exception."""
    with pytest.raises(evi.EviPayloadError, match=message):
        evi.parse_webhook(body)


def test_unknown_event_names_are_kept_with_a_body_specific_key() -> None:
    """A new event type is recognised as unknown; two different deliveries of it get different keys."""
    first = evi.parse_webhook(b'{"event_name":"chat_paused","chat_id":"c","n":1}')
    assert isinstance(first, evi.UnknownEvent) and first.event_name == "chat_paused"
    assert evi.dedup_key(first, b"1") != evi.dedup_key(first, b"2")


def test_timestamps_in_seconds_or_milliseconds() -> None:
    """The SDK documents event timestamps in seconds, Hume's examples use milliseconds: both are read."""
    assert evi.to_ms(1_800_000_000) == evi.to_ms(1_800_000_000_000) == 1_800_000_000_000


def test_user_and_assistant_rows_with_text_time_and_scores() -> None:
    """User messages become 'user' rows and agent messages 'assistant' rows, timed from the chat start,
    with the message text and every score by name; unscored events produce nothing."""
    rows, errors = evi.prediction_rows(
        history(
            event(0, "SYSTEM", "SYSTEM_PROMPT", START_MS, message_text="be nice"),
            event(1, "USER", "USER_MESSAGE", START_MS + 2_500, message_text="hi", emotion_features=features()),
            event(2, "AGENT", "AGENT_MESSAGE", START_MS + 4_000, message_text="hello", emotion_features=features()),
            event(3, "USER", "USER_INTERRUPTION", START_MS + 5_000),
        )
    )
    assert errors == []
    assert [(r.group_id, r.text, r.time_begin, r.model) for r in rows] == [
        ("user", "hi", 2.5, "prosody"),
        ("assistant", "hello", 4.0, "prosody"),
    ]
    assert [s.name for s in rows[0].scores] == list(EXPRESSIONS_48)
    assert rows[0].scores[47].score == pytest.approx(0.47)
    assert rows[0].extras is not None and orjson.loads(rows[0].extras)["event_id"] == "e1"


def test_assistant_prosody_events_are_used_once_with_the_message_text() -> None:
    """When EVI scores assistant speech in a separate ASSISTANT_PROSODY event, that event is the row (with
    the text of the message it points to) and the message itself is not counted again."""
    rows, _ = evi.prediction_rows(
        history(
            event(1, "AGENT", "AGENT_MESSAGE", START_MS + 1_000, message_text="hello", emotion_features=features()),
            event(
                2,
                "AGENT",
                "ASSISTANT_PROSODY",
                START_MS + 1_200,
                related_event_id="e1",
                emotion_features=features(Joy=0.9),
            ),
        )
    )
    assert len(rows) == 1
    assert (rows[0].group_id, rows[0].text, [s.name for s in rows[0].scores]) == ("assistant", "hello", ["Joy"])


def test_seconds_timestamps_are_timed_like_milliseconds() -> None:
    """A history in seconds gives the same relative times as one in milliseconds."""
    rows, _ = evi.prediction_rows(
        history(event(1, "USER", "USER_MESSAGE", 1_800_000_030, emotion_features=features()), start_ms=START_MS)
    )
    assert rows[0].time_begin == 30.0


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '{"Joy": "high"}', "{}"])
def test_unreadable_scores_are_reported_not_fatal(bad: str) -> None:
    """An event whose emotion_features cannot be read is listed as an error; the rest are still stored."""
    rows, errors = evi.prediction_rows(
        history(
            event(1, "USER", "USER_MESSAGE", START_MS + 1_000, emotion_features=bad),
            event(2, "USER", "USER_MESSAGE", START_MS + 2_000, emotion_features=features()),
        )
    )
    assert [r.text for r in rows] == [None] and rows[0].time_begin == 2.0
    assert [e["file"] for e in errors] == ["e1"] and errors[0]["message"]
