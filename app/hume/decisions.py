"""Hume's Audio Decisions API (`/v0/decisions/...` on the cloud host), the only code that calls it.

No SDK is installable here (`hume-audio-decisions` is not on the index these machines reach), so this is a
small httpx client over the facts and assumptions in app.hume.decisions_contract. Each request goes through
the same timing transport and shared per-organization request budget as the v1 client
(app.hume.call_timing), so a retry spends the budget like any request: Hume counts every Audio Decisions
endpoint against the organization's 600 requests a minute (C/2026/11/6).

Answers are read tolerantly: every plausible spelling, Hume's raw answer kept beside what we read, and each
field we do not know logged once per process (`hume_decisions_unknown_field`), so a change on Hume's side
shows in the log the first time it comes, not as wrong numbers later.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from app.hume import decisions_contract as hume
from app.hume.call_timing import Pace, timed_client
from app.hume.errors import HumeError

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_S = 60.0
"""Per attempt. Hume's own integration waits 10 s (docs.pipecat.ai hume-audio), for clips of a few seconds;
a 25 MB upload of 5 minutes of WAV needs longer on a slow link (medians are 42-119 ms, C/2026/11/16)."""
DEFAULT_MAX_RETRIES = 3
BACKOFF_S = 0.5
"""First wait after a busy answer without Retry-After; doubled each time, capped at MAX_BACKOFF_S."""
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0
"""Longer Retry-After values are cut to the rate window (60 s): waiting longer cannot help a sliding minute."""


class DecisionsError(HumeError):
    """Hume refused or failed a request, as one type the caller can branch on.

    `code` is Hume's stable code (None for gateway answers, which carry only `message`: 401, 429 and 404 on
    unknown paths, D/errors); `param` the JSON pointer or part name it names; `retryable` whether the same
    request may succeed later (429, 408, 5xx and no answer at all)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        code: str | None = None,
        hume_message: str = "",
        param: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.hume_message = hume_message
        self.param = param
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after

    @property
    def media(self) -> bool:
        """About the one recording sent (too short, too long, too large, not MP3/WAV): that source fails."""
        return self.code in hume.MEDIA_ERROR_CODES

    @property
    def account(self) -> bool:
        """About the key or the organization (401, 402, 403): nothing succeeds until someone fixes it."""
        return self.status in (401, hume.PAYMENT_REQUIRED_STATUS, hume.FORBIDDEN_STATUS)

    @property
    def error_code(self) -> str:
        """A stable code for a job or source that ended with this error."""
        if self.status == 401:
            return "hume_unauthorized"
        if self.status == hume.PAYMENT_REQUIRED_STATUS:
            return "hume_payment_required"
        if self.status == hume.FORBIDDEN_STATUS:
            return "hume_forbidden"
        if self.code:
            return self.code
        return "hume_busy" if self.retryable else f"hume_http_{self.status}"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.hume_message, "param": self.param,
                "request_id": self.request_id, "retryable": self.retryable}  # fmt: skip


@dataclass(frozen=True)
class DecisionsResult:
    run_id: str | None
    answers: dict[str, hume.Answer]
    input_tokens: int | None
    raw: Any
    """Hume's response body as it came."""
    unknown_fields: tuple[str, ...] = ()
    """Fields of the response (answers included, as `answers.<primitive>.<field>`) the reader does not know."""
    attempts: int = 1


@dataclass(frozen=True)
class DecisionRun:
    """A run as the runs endpoints describe it (R/runs/get.md); it holds no answers."""

    run_id: str
    status: str | None
    started_at: str | None
    ended_at: str | None
    input_tokens: int | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class RunPage:
    runs: list[DecisionRun]
    next_cursor: str | None


# --- Unknown fields, logged once per field per process ----------------------------------------------------

_logged: set[str] = set()
_logged_lock = threading.Lock()


def log_unknown(fields: Iterable[str], *, where: str) -> list[str]:
    """Log each field not logged before in this process; returns those logged now."""
    fresh: list[str] = []
    with _logged_lock:
        for name in fields:
            if name not in _logged:
                _logged.add(name)
                fresh.append(name)
    for name in fresh:
        log.warning(
            "hume_decisions_unknown_field", field=name, where=where, hint="python -m app hume check --decisions"
        )
    return fresh


def unknown_fields(body: Any, answers: Mapping[str, hume.Answer], primitives: Mapping[str, str]) -> tuple[str, ...]:
    found = list(hume.unknown_response_fields(body, primitives))
    for answer in answers.values():
        found.extend(f"answers.{answer.primitive}.{name}" for name in answer.unknown_fields)
    return tuple(dict.fromkeys(found))


# --- Errors ---------------------------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: rare from an API gateway, and the backoff covers it


def judged(response: httpx.Response) -> DecisionsError:
    """An error answer as DecisionsError: service bodies carry type/code/message/param/request_id, gateway
    bodies only message (and request_id on a refused key), D/errors.md; anything else is kept as text."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    get = body.get if isinstance(body, dict) else lambda _key: None
    code = get("code") if isinstance(get("code"), str) else None
    message = str(get("message") or get("detail") or "") or response.text[:300].strip() or f"HTTP {status}"
    param = get("param") if isinstance(get("param"), str) else None
    request_id = get("request_id") if isinstance(get("request_id"), str) else None
    retryable = status in hume.RETRYABLE_STATUSES or status >= 500
    where = f" at {param}" if param else ""
    ref = f" (request {request_id})" if request_id else ""
    if status == 401:
        text = f"Hume refused the API key (401 {message}): check HUME_CLOUD_API_KEY, else HUME_API_KEY"
    elif status == hume.PAYMENT_REQUIRED_STATUS:
        text = f"Hume answered 402: the organization has no payment method on file or an unpaid invoice ({message})"
    elif status == hume.FORBIDDEN_STATUS:
        text = (f"Hume answered 403: the organization has no Audio Decisions access, or the key's permissions "
                f"exclude it ({message})")  # fmt: skip
    elif status == 429:
        text = f"Hume's rate limit (429 {message}): {hume.REQUESTS_PER_MINUTE} requests a minute per organization"
    else:
        text = f"Hume Audio Decisions answered {status} {code or ''}{where}: {message}".replace("  ", " ")
    return DecisionsError(text + ref, status=status, code=code, hume_message=message, param=param,
                          request_id=request_id, retryable=retryable, retry_after=_retry_after(response))  # fmt: skip


def _unreachable(exc: httpx.TransportError) -> DecisionsError:
    return DecisionsError(f"Hume Audio Decisions unreachable: {type(exc).__name__}: {exc}", status=None,
                          retryable=True)  # fmt: skip


# --- The client -----------------------------------------------------------------------------------------


class DecisionsClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        pace: Pace | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = BACKOFF_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`pace` reserves each request (retries included) from the organization's shared budget."""
        self._http = timed_client("decisions", timeout_s=timeout_s, pace=pace)
        self._base = base_url.rstrip("/")
        self._headers = {hume.API_KEY_HEADER: api_key}
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._sleep = sleep

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client (the check command hooks its responses to show Hume's raw answers)."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, build: Callable[[], httpx.Request]) -> tuple[httpx.Response, int]:
        """Send, retrying busy answers (honouring Retry-After) and lost connections; the answer and attempts."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(build())
            except httpx.TransportError as exc:
                error = _unreachable(exc)
            else:
                if response.status_code < 400:
                    return response, attempt
                error = judged(response)
            if not error.retryable or attempt > self._max_retries:
                raise error
            wait = error.retry_after
            if wait is None:
                wait = min(MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1))
            log.info("hume_decisions_retry", status=error.status, code=error.code, attempt=attempt, wait_s=wait)
            await self._sleep(wait)

    def _url(self, path: str) -> str:
        return f"{self._base}{path}"

    async def decide(
        self,
        audio: bytes,
        filename: str,
        content_type: str,
        questions: Mapping[str, Mapping[str, Any]],
        context: str | None = None,
    ) -> DecisionsResult:
        """Ask `questions` (our shape, in the order given) about one MP3 or WAV recording of 1 s to 5 min."""
        request = orjson.dumps(hume.request_wire(questions, context))
        files = [
            # R/decisions/create.md: `request` first, then `file`.
            (hume.REQUEST_PART, (None, request, hume.REQUEST_PART_CONTENT_TYPE)),
            (hume.FILE_PART, (filename, audio, content_type)),
        ]

        def build() -> httpx.Request:
            return self._http.build_request("POST", self._url(hume.DECISIONS_PATH), headers=self._headers,
                                            files=files)  # fmt: skip

        response, attempts = await self._send(build)
        try:
            body = response.json()
        except ValueError:
            raise DecisionsError(f"Hume answered {response.status_code} with a body that is not JSON",
                                 status=response.status_code) from None  # fmt: skip
        primitives = {qid: str(q["type"]) for qid, q in questions.items()}
        read = hume.read_response(body, primitives)
        unknown = unknown_fields(body, read.answers, primitives)
        log_unknown(unknown, where=hume.DECISIONS_PATH)
        return DecisionsResult(read.run_id, read.answers, read.input_tokens, body, unknown, attempts)

    async def input_tokens(
        self, audio_duration_ms: int, questions: Mapping[str, Mapping[str, Any]], context: str | None = None
    ) -> int:
        """Hume's estimate of a decisions request's input tokens (free: D/billing)."""
        body = {hume.AUDIO_DURATION_KEY: audio_duration_ms, **hume.request_wire(questions, context)}

        def build() -> httpx.Request:
            return self._http.build_request("POST", self._url(hume.INPUT_TOKENS_PATH), headers=self._headers,
                                            json=body)  # fmt: skip

        response, _ = await self._send(build)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        tokens = hume.read_input_tokens(answer)
        if tokens is None:
            raise DecisionsError(f"Hume's input_tokens answer has no token count: {response.text[:200]}",
                                 status=response.status_code)  # fmt: skip
        if isinstance(answer, dict):
            log_unknown([k for k in answer if k != hume.INPUT_TOKENS_KEY], where=hume.INPUT_TOKENS_PATH)
        return tokens

    async def list_runs(
        self,
        *,
        page_size: int | None = None,
        cursor: str | None = None,
        status: str | None = None,
        started_before: str | None = None,
        started_after: str | None = None,
        user_id: str | None = None,
    ) -> RunPage:
        """One page of the organization's runs, newest first (R/runs/list.md)."""
        params = {name: value for name, value in (
            ("page_size", page_size), ("cursor", cursor), ("status", status), ("started_before", started_before),
            ("started_after", started_after), ("user_id", user_id)) if value is not None}  # fmt: skip

        def build() -> httpx.Request:
            return self._http.build_request("GET", self._url(hume.RUNS_PATH), headers=self._headers, params=params)

        response, _ = await self._send(build)
        body = response.json()
        runs = body.get("runs") if isinstance(body, dict) else None
        next_cursor = body.get("next_cursor") if isinstance(body, dict) else None
        return RunPage([_run(r) for r in runs or [] if isinstance(r, dict)],
                       next_cursor if isinstance(next_cursor, str) and next_cursor else None)  # fmt: skip

    async def get_run(self, run_id: str) -> DecisionRun | None:
        """The run, or None while Hume does not know it: a run appears after a delay, and a non-UUID or
        another organization's id is 404 too (R/runs/get.md; D/runs)."""

        def build() -> httpx.Request:
            return self._http.build_request("GET", self._url(f"{hume.RUNS_PATH}/{run_id}"), headers=self._headers)

        try:
            response, _ = await self._send(build)
        except DecisionsError as exc:
            if exc.status == 404:
                return None
            raise
        return _run(response.json())


def _run(raw: dict[str, Any]) -> DecisionRun:
    received = raw.get(hume.RECEIVED_KEY)
    tokens = received.get(hume.INPUT_TOKENS_KEY) if isinstance(received, dict) else None
    return DecisionRun(
        run_id=str(raw.get("run_id")),
        status=raw.get("status"),
        started_at=raw.get("started_at"),
        ended_at=raw.get("ended_at"),
        input_tokens=tokens if isinstance(tokens, int) else None,
        raw=raw,
    )
