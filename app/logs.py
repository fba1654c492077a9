"""structlog configuration: readable console lines for a person at a terminal, JSON lines otherwise.

A request's fields (its id, a webhook's outcome and ids) live in one dict per request (`request_fields`),
merged into every line logged while it runs; structlog's own contextvars still work for everything else.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextvars import ContextVar
from typing import IO, Any

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from app.config import Settings

_REQUEST_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar("request_log_fields", default=None)


def request_fields() -> dict[str, Any] | None:
    """The fields of the request being served here (None outside a request)."""
    return _REQUEST_FIELDS.get()


def start_request(fields: dict[str, Any]) -> object:
    """Make `fields` the current request's (until `end_request` with the returned token)."""
    return _REQUEST_FIELDS.set(fields)


def end_request(token: object) -> None:
    _REQUEST_FIELDS.reset(token)  # type: ignore[arg-type]


def add_request_fields(**fields: Any) -> None:
    """Fields for the current request's log line and for every line logged while it runs; nothing outside
    a request."""
    current = _REQUEST_FIELDS.get()
    if current is not None:
        current.update(fields)


def _merge_request_fields(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    # One dict per request instead of one contextvar per field: binding, reading and clearing structlog's
    # contextvars copied the whole context each time (8 us a webhook delivery).
    fields = _REQUEST_FIELDS.get()
    if fields:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


class LoopFlushedBytesLogger:
    """JSON lines into stdout's buffer, flushed once per event-loop turn while a loop runs (at once
    otherwise): a line per request flushed alone was a write() each (4% of a webhook acknowledgement's
    CPU). A line waits at most for the callbacks already queued in its turn."""

    def __init__(self, file: IO[bytes] | None = None) -> None:
        self._file = file or sys.stdout.buffer
        self._flush_scheduled = False

    def msg(self, message: bytes) -> None:
        self._file.write(message + b"\n")
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing would flush later
            self._file.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _loop_flushed_logger(*args: Any) -> LoopFlushedBytesLogger:
    return LoopFlushedBytesLogger()


def configure(settings: Settings) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level, logging.INFO)
    console = settings.log_format == "console"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        # orjson's bytes go straight to stdout's buffer: a request's line costs ~14 us, the console's ~40 us.
        else structlog.processors.JSONRenderer(serializer=orjson.dumps, option=orjson.OPT_NON_STR_KEYS)
    )
    structlog.configure(
        processors=[
            _merge_request_fields,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory() if console else _loop_flushed_logger,
        # Not cached: create_app may reconfigure (tests, CLI), and the lookup is cheap; the request log
        # binds its logger once per application (app/web/request_log.py).
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), format="%(levelname)s %(name)s %(message)s")
