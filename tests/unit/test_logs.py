"""Log format: readable lines for a person at a terminal, JSON lines for everything else."""

from __future__ import annotations

import asyncio
import io
import os
import select
import sys
import uuid

import orjson
import pytest
import structlog

from app import logs
from app.config import Settings


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_unless_a_terminal_watches_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert Settings.from_env({}).log_format == "json"
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert Settings.from_env({}).log_format == "console"
    assert Settings.from_env({"ENVIRONMENT": "production"}).log_format == "json"
    assert Settings.from_env({"LOG_FORMAT": "json"}).log_format == "json"


def test_json_lines_carry_context_and_values_json_cannot_hold(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """Each line parses alone; ids, bytes, non-string keys and exceptions come out as text, never a crash."""
    logs.configure(Settings(database_url="postgresql://db/x", log_format="json"))
    log = structlog.get_logger("test")
    job = uuid.uuid4()
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        log.info("request", job=job, raw=b"\x00", counts={1: "one"}, other=object())
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        structlog.contextvars.clear_contextvars()
        logs.configure(Settings(database_url="postgresql://db/x", log_format="console"))  # as the other tests had it
    lines = [orjson.loads(line) for line in capfdbinary.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["request", "failed"]
    assert lines[0]["job"] == str(job) and lines[0]["counts"] == {"1": "one"} and lines[0]["request_id"] == "r-1"
    assert lines[0]["level"] == "info" and "timestamp" in lines[0]
    assert "ValueError: boom" in lines[1]["exception"]


async def test_lines_logged_in_a_loop_turn_are_flushed_by_the_next() -> None:
    """Lines logged while an event loop runs share one flush, done as the loop turns: none waits longer."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as out, os.fdopen(read_fd, "rb", buffering=0) as pipe:
        logger = logs.LoopFlushedBytesLogger(out)
        logger.msg(b"one")
        logger.msg(b"two")
        assert select.select([pipe], [], [], 0)[0] == []  # still in this process's buffer
        await asyncio.sleep(0)
        assert select.select([pipe], [], [], 1)[0] == [pipe], "not flushed"
        assert pipe.read(100) == b"one\ntwo\n"


async def test_a_requests_fields_ride_on_every_line_logged_while_it_runs(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    logs.configure(Settings(database_url="postgresql://db/x", log_format="json"))
    try:
        log = structlog.get_logger("test")
        token = logs.start_request({"request_id": "r-2"})
        logs.add_request_fields(outcome="accepted")
        for n in range(3):
            log.info("line", n=n)
        logs.end_request(token)
        log.info("after")
        await asyncio.sleep(0)
        out = capfdbinary.readouterr().out
    finally:
        logs.configure(Settings(database_url="postgresql://db/x", log_format="console"))
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert [line.get("n") for line in lines] == [0, 1, 2, None]
    assert [line.get("outcome") for line in lines] == ["accepted"] * 3 + [None]
    assert lines[0]["request_id"] == "r-2" and "request_id" not in lines[3]
