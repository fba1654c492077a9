"""Exceptions to HTTP answers, in one table: every error is `{"error": {"code", "message"}}` with its status,
the database being away is a 503 with Retry-After, and Hume failures map one way for every route."""

from __future__ import annotations

from typing import Any

import msgspec
import procrastinate.exceptions
import psycopg
import sqlalchemy.exc
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.api.hume_failures import hume_failure
from app.api.responses import JSON
from app.core.prediction_rows import PredictionFormatError
from app.errors import AppError
from app.hume.callbacks import CallbackFormatError
from app.hume.errors import HumeError

log = structlog.get_logger(__name__)


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    details: dict[str, Any] | None = None  # invalid_input: {"field": ...}


class ErrorBody(msgspec.Struct):
    """Every error answer."""

    error: ErrorDetail


def _error(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSON:
    return JSON(ErrorBody(ErrorDetail(code, message, details)), status_code=status, headers=headers)


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return _error(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)


async def _format_error(request: Request, exc: Exception) -> Response:
    return _error(400, "bad_payload", str(exc))


async def _database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", error=type(exc).__name__, path=request.url.path)
    return _error(503, "unavailable", "database unavailable; retry later", headers={"Retry-After": "5"})


async def _hume_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HumeError)
    return await _app_error(request, hume_failure(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path)
    return _error(500, "internal", "internal error")


def handlers() -> dict[Any, Any]:
    return {
        AppError: _app_error,
        HTTPException: _http_error,
        CallbackFormatError: _format_error,
        PredictionFormatError: _format_error,
        HumeError: _hume_error,
        sqlalchemy.exc.OperationalError: _database_down,
        sqlalchemy.exc.InterfaceError: _database_down,
        sqlalchemy.exc.TimeoutError: _database_down,  # pool exhausted while connections hang
        procrastinate.exceptions.ConnectorException: _database_down,  # a defer when the database went away
        # psycopg's connection failures (refused, reset, pool timeout) are OperationalErrors; a bare OSError
        # names no database (a file, a socket to Hume) and is a 500 like any other unexpected error.
        psycopg.OperationalError: _database_down,
        Exception: _unexpected,
    }
