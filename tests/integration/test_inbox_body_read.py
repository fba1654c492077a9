"""The worker reads an event's body whole, however large: small bodies with the row, large ones in slices."""

from __future__ import annotations

import os

import psycopg
import pytest

from app.store import inbox_events


async def _stored(database_url: str, body: bytes) -> int:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "INSERT INTO inbox_event (provider, dedup_key, event_type, body, headers)"
            " VALUES ('hume', %s, 'batch', %s, '{\"x\": \"1\"}') RETURNING id",
            (os.urandom(8).hex(), body),
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.parametrize("size", [0, 999, 1000, 1001, 10_500])
async def test_a_body_reads_back_byte_for_byte_across_slices(
    database_url: str, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(inbox_events, "BODY_SLICE", 1000)
    body = os.urandom(size)
    event_id = await _stored(database_url, body)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        event = await inbox_events.read(conn, event_id)
        assert event is not None
        assert bytes(event.body) == body
        assert event.headers == {"x": "1"}
        assert event.state == "received"
        assert await inbox_events.read(conn, event_id + 1000) is None
