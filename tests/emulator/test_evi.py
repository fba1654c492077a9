"""EVI chat history through the SDK and signed EVI webhooks."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import orjson
import pytest
from hume import AsyncHumeClient, HumeClient
from hume.core.api_error import ApiError
from hume.empathic_voice.types import EmotionScores, WebhookEventChatEnded, WebhookEventChatStarted

from app.emulator.labels import EMOTIONS_48
from app.emulator.testing import EmulatorServer

from .conftest import Receiver


def _verify(body: bytes, headers: dict[str, str], key: str, tolerance_s: int = 180) -> bool:
    """The receiver side of HUME.md 2.2: HMAC-SHA256(body + "." + timestamp), hex, constant-time compare."""
    timestamp = headers["x-hume-ai-webhook-timestamp"]
    expected = hmac.new(key.encode(), body + b"." + timestamp.encode(), hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(expected, headers["x-hume-ai-webhook-signature"])


def test_list_chats_and_events_over_all_pages(emu: EmulatorServer, client: HumeClient) -> None:
    """list_chats and list_chat_events page through everything; user messages carry 48 prosody scores."""
    created = [emu.create_chat(turns=4, seed=i) for i in range(13)]
    chats = list(client.empathic_voice.chats.list_chats(page_size=5))
    assert len(chats) == 13 and {c.id for c in chats} == {c["id"] for c in created}
    starts = [c.start_timestamp for c in chats]
    assert starts == sorted(starts)  # ascending by default
    first = client.empathic_voice.chats.list_chats(page_size=5, ascending_order=False)
    assert first.response.total_pages == 3 and first.response.pagination_direction == "DESC"
    events = list(client.empathic_voice.chats.list_chat_events(chats[0].id, page_size=3))
    assert len(events) == chats[0].event_count == 1 + 4 * 3 + 1
    assert events[0].type == "SYSTEM_PROMPT" and events[-1].type == "CHAT_END_MESSAGE"
    users = [e for e in events if e.type == "USER_MESSAGE"]
    assert len(users) == 4 and all(e.role == "USER" and e.message_text for e in users)
    for e in users:
        assert e.emotion_features is not None
        scores = orjson.loads(e.emotion_features)
        assert list(scores) == list(EMOTIONS_48) and all(0 <= v <= 1 for v in scores.values())
        EmotionScores.model_validate(scores)
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)


async def test_async_chat_listing_filters_and_errors(emu: EmulatorServer, async_client: AsyncHumeClient) -> None:
    """The async pager works; config_id/status filter; unknown chats are 404 and bad page sizes 400."""
    emu.create_chat(turns=2, config_id="cfg-1")
    emu.create_chat(turns=2, end_reason="USER_TIMEOUT")
    pager = await async_client.empathic_voice.chats.list_chats(config_id="cfg-1")
    found = [c async for c in pager]
    assert len(found) == 1 and found[0].config is not None and found[0].config.id == "cfg-1"
    pager = await async_client.empathic_voice.chats.list_chats(status="USER_TIMEOUT")
    assert [c.status async for c in pager] == ["USER_TIMEOUT"]
    with pytest.raises(ApiError) as err:
        await async_client.empathic_voice.chats.list_chat_events("no-such-chat")
    assert err.value.status_code == 404
    with pytest.raises(ApiError) as err:
        await async_client.empathic_voice.chats.list_chats(page_size=500)
    assert err.value.status_code == 400


def test_seeded_history_on_a_fresh_emulator(make_emulator: Callable[..., EmulatorServer]) -> None:
    """A fresh emulator lists a few finished chats with stable ids, so demos have history."""
    a = make_emulator(seed_evi_chats=2)
    b = make_emulator(seed_evi_chats=2)
    ids_a = [c.id for c in HumeClient(api_key="k", base_url=a.base_url).empathic_voice.chats.list_chats()]
    ids_b = [c.id for c in HumeClient(api_key="k", base_url=b.base_url).empathic_voice.chats.list_chats()]
    assert len(ids_a) == 2 and ids_a == ids_b


def test_signed_chat_started_and_chat_ended_webhooks(
    make_emulator: Callable[..., EmulatorServer], receiver: Receiver
) -> None:
    """A simulated chat POSTs chat_started then chat_ended, each verifiable with HUME.md 2.2's scheme."""
    emu = make_emulator(evi_webhook_url=receiver.url, evi_signing_key="whsec-test")
    chat = emu.create_chat(turns=3, custom_session_id="sess-1")
    got = receiver.wait_for(2)
    assert [r.json()["event_name"] for r in got] == ["chat_started", "chat_ended"]
    for r in got:
        assert _verify(r.body, r.headers, "whsec-test")
        assert not _verify(r.body, r.headers, "wrong-key")
        assert not _verify(r.body + b" ", r.headers, "whsec-test")
    started = WebhookEventChatStarted.model_validate(got[0].json())
    ended = WebhookEventChatEnded.model_validate(got[1].json())
    assert started.chat_id == ended.chat_id == chat["id"]
    assert started.chat_start_type == "new_chat_group" and started.custom_session_id == "sess-1"
    assert ended.end_reason == "USER_ENDED" and ended.duration_seconds > 0
    assert ended.end_time > started.start_time


def test_active_chat_ends_later_and_api_key_signs_by_default(
    make_emulator: Callable[..., EmulatorServer], receiver: Receiver
) -> None:
    """An `active` chat fires chat_started now and chat_ended when ended; without a signing key the API key signs."""
    emu = make_emulator(api_key="the-api-key", evi_webhook_url=receiver.url)
    chat = emu.create_chat(turns=1, active=True)
    assert [r.json()["event_name"] for r in receiver.wait_for(1)] == ["chat_started"]
    client = HumeClient(api_key="the-api-key", base_url=emu.base_url)
    assert next(iter(client.empathic_voice.chats.list_chats(status="ACTIVE"))).id == chat["id"]
    resp = httpx.post(f"{emu.base_url}/_emulator/evi/chats/{chat['id']}/end", json={"end_reason": "INACTIVITY_TIMEOUT"})
    assert resp.status_code == 200
    got = receiver.wait_for(2)
    assert got[1].json()["end_reason"] == "INACTIVITY_TIMEOUT"
    assert all(_verify(r.body, r.headers, "the-api-key") for r in got)


def test_ending_an_active_chat_notifies_the_url_given_at_creation(
    make_emulator: Callable[..., EmulatorServer], receiver: Receiver
) -> None:
    """A chat created with its own webhook_url (no configured URL) sends chat_ended there too when ended."""
    emu = make_emulator(api_key="k")
    chat = emu.create_chat(turns=1, active=True, webhook_url=receiver.url)
    assert [r.json()["event_name"] for r in receiver.wait_for(1)] == ["chat_started"]
    assert httpx.post(f"{emu.base_url}/_emulator/evi/chats/{chat['id']}/end", json={}).status_code == 200
    assert [r.json()["event_name"] for r in receiver.wait_for(2)] == ["chat_started", "chat_ended"]
