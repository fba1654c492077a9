"""EVI's history API read through the real SDK against the emulator: every page of a long chat's events,
every page of the chat list, and the rows a long chat becomes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from app.emulator.testing import EmulatorServer
from app.hume import evi_chats as evi
from app.hume.errors import HumeNotFoundError
from app.hume.gateway import HumeGateway
from tests.conftest import EMULATOR_KEY


@pytest.fixture
async def gateway(emulator: EmulatorServer) -> AsyncIterator[HumeGateway]:
    gateway = HumeGateway(api_key=EMULATOR_KEY, base_url=emulator.base_url)
    try:
        yield gateway
    finally:
        await gateway.aclose()


async def test_long_chat_is_read_across_every_page(gateway: HumeGateway, emulator: EmulatorServer) -> None:
    """A chat of 120 exchanges (362 events, four pages of 100) is read whole, in order, and becomes one
    row per scored utterance: none lost at a page boundary, none read twice."""
    chat = emulator.create_chat(turns=120, seed="long", send_webhooks=False)
    history = await evi.chat_history(gateway.client, chat["id"])
    assert len(history.events) == 362 == chat["event_count"]
    assert len({e.id for e in history.events}) == 362
    stamps = [e.timestamp for e in history.events]
    assert stamps == sorted(stamps)
    assert history.start_ms == chat["start_timestamp"] and history.end_ms == chat["end_timestamp"]

    rows, errors = evi.prediction_rows(history)
    assert not errors
    assert [r.group_id for r in rows].count("user") == 120 and [r.group_id for r in rows].count("assistant") == 120
    times = [r.time_begin or 0.0 for r in rows]
    assert times == sorted(times) and times[0] > 0
    # The last scored event is an ASSISTANT_PROSODY pointing back to the last agent message.
    prosody, message = history.events[-2], history.events[-3]
    assert prosody.type == "ASSISTANT_PROSODY" and prosody.related_event_id == message.id
    assert rows[-1].text == message.message_text
    assert rows[-1].time_begin == pytest.approx((prosody.timestamp - chat["start_timestamp"]) / 1000)
    assert prosody.emotion_features is not None
    scores = {s.name: s.score for s in rows[-1].scores}
    assert scores == pytest.approx(orjson.loads(prosody.emotion_features))


async def test_chat_listing_reads_every_page_and_stops_at_older_chats(
    gateway: HumeGateway, emulator: EmulatorServer
) -> None:
    """Listing chats since a time follows the pages (more than 100 chats) and leaves out chats that
    started earlier."""
    old = emulator.create_chat(turns=1, seed="old", duration_s=3 * 3600, send_webhooks=False)
    recent = {emulator.create_chat(turns=1, send_webhooks=False)["id"] for _ in range(105)}
    since_ms = old["start_timestamp"] + 3600 * 1000
    found = await evi.chats_since(gateway.client, since_ms)
    assert {c.chat_id for c in found} == recent and len(found) == 105
    assert all(c.start_ms >= since_ms and c.status == "USER_ENDED" for c in found)


async def test_unknown_chat_is_a_not_found_error(gateway: HumeGateway) -> None:
    """A chat id Hume does not know comes out as our not-found error naming the chat, not an SDK one."""
    with pytest.raises(HumeNotFoundError, match="no-such-chat"):
        await evi.chat_history(gateway.client, "no-such-chat")
