"""Hume's v1 Expression Measurement API (synchronous file endpoints), the only code that calls its SDK.

Results are returned as Hume's JSON (a dict per response) for the caller to store as they came; errors
are sorted into what the job should do about them (app.hume.errors): wait and retry, fail the job, or
fail just the one medium.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from hume_expression_measurement import AsyncExpressionMeasurementClient, ExpressionMeasurementClientEnvironment, core
from hume_expression_measurement.core.api_error import ApiError
from hume_expression_measurement.core.parse_error import ParsingError
from hume_expression_measurement.core.request_options import RequestOptions
from hume_expression_measurement.types import AudioFileConfig, Run, RunSummary, VideoFileConfig, VideoFileConfigFace

from app.hume.call_timing import Pace, timed_client
from app.hume.errors import (
    HumeAuthError,
    HumeMediaRefused,
    HumeNotEnabledError,
    HumeRejectedError,
    HumeTransientError,
)

# Codes that mean "this medium", not "this request is wrong": the rest of the job can still complete.
MEDIA_CODES = frozenset(
    {"audio_decode_failed", "image_decode_failed", "audio_too_long", "image_too_large", "unsupported_media_type"}
)
_TRANSIENT_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class Measured:
    request_id: str
    run_id: str
    result: dict[str, Any]
    """Hume's response as JSON."""
    face_state: str | None = None


@dataclass(frozen=True)
class FaceOptions:
    """A video request's `face` config; None is not sent, so Hume's default applies (HUME-V1-FACTS §3)."""

    threshold: float | None = None
    min_size: int | None = None


@dataclass(frozen=True)
class AudioOptions:
    """An audio request's config; None is not sent, so Hume's default applies (HUME-V1-FACTS §3)."""

    measurement_timer_ms: int | None = None


@dataclass(frozen=True)
class RunBill:
    """What Hume's runs API says a run cost (HUME-V1-FACTS §6 Runs): `metered_seconds` "updates live", so it
    is final only once `status` is not `live`."""

    run_id: str
    status: str
    mode: str
    metered_seconds: float
    started_at: datetime

    @property
    def final(self) -> bool:
        return self.status != "live"


@dataclass(frozen=True)
class RunPage:
    runs: list[RunBill]
    next_cursor: str | None
    """None on the last page (HUME-V1-FACTS §6: "no cursor on the last page")."""


RUNS_PAGE_SIZE = 200
"""The runs list's largest page (HUME-V1-FACTS §2: `page_size` int 1-200)."""


def _bill(run: Run | RunSummary) -> RunBill:
    return RunBill(run.run_id, str(run.status), str(run.mode), float(run.metered_seconds), run.started_at)


def _given(**fields: Any) -> dict[str, Any]:
    """Only the fields set: the SDK serializes a field passed as None as an explicit JSON null."""
    return {name: value for name, value in fields.items() if value is not None}


def _retry_after(headers: dict[str, str] | None) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _describe(exc: ApiError) -> tuple[str, str, str | None]:
    """(code, message, request_id) from an error body, whichever shape it came in."""
    body = exc.body
    get = body.get if isinstance(body, dict) else lambda key, default=None: getattr(body, key, default)
    code = str(get("code", "") or "")
    message = str(get("message", "") or get("detail", "") or "") or f"HTTP {exc.status_code}"
    request_id = get("request_id", None)
    return code, message, None if request_id is None else str(request_id)


def classify(exc: ApiError) -> Exception:
    status = exc.status_code or 0
    code, message, request_id = _describe(exc)
    where = f" (request {request_id})" if request_id else ""
    if status in _TRANSIENT_STATUSES or status >= 500:
        return HumeTransientError(
            f"Hume v1 answered {status} {code}: {message}{where}".replace("  ", " "),
            status=status, retry_after=_retry_after(exc.headers),
        )  # fmt: skip
    if status == 401:
        # Answered before the service, without type/code (HUME-V1-FACTS §1).
        return HumeAuthError(f"Hume v1 refused the API key (401): {message}", status=status)
    if status == 403:
        return HumeNotEnabledError(
            f"Hume answered 403: this organization is not enabled for the v1 Expression Measurement API (limited "
            f"release since 2026-10-06; ask Hume's sales for access): {message}{where}", status=status,
        )  # fmt: skip
    if code in MEDIA_CODES:
        return HumeMediaRefused(f"Hume could not measure it: {code}: {message}{where}", status=status, code=code,
                                request_id=request_id)  # fmt: skip
    answer = f"{status} {code}" if code else str(status)
    return HumeRejectedError(f"Hume v1 rejected the request ({answer}): {message}{where}", status=status)


def unparsable(exc: ParsingError) -> Exception:
    """An answer the SDK's models refused. An error status is judged by its status as any error is (a 503
    whose body lacks v1's type/code fails the SDK's error model, and is still Hume busy); a success whose
    body does not match is a contract break retrying cannot mend."""
    status = exc.status_code or 0
    if status >= 400:
        return classify(ApiError(status_code=status, headers=exc.headers, body=exc.body))
    return HumeRejectedError(f"Hume v1's answer ({status}) did not match the SDK's response model: {exc.cause}")


@contextlib.contextmanager
def answers_judged() -> Iterator[None]:
    """Hume's failures inside the block as app.hume.errors types: an error answer by its status and code, an
    answer the SDK cannot parse by its status, no answer at all as transient."""
    try:
        yield
    except ApiError as exc:
        raise classify(exc) from None
    except ParsingError as exc:
        raise unparsable(exc) from None
    except httpx.TransportError as exc:
        raise HumeTransientError(f"Hume v1 unreachable: {type(exc).__name__}: {exc}") from None


class ExpressionClient:
    def __init__(
        self, *, api_key: str, base_url: str, max_retries: int = 2, timeout_s: float = 300.0, pace: Pace | None = None
    ) -> None:
        """`pace` reserves each request (the SDK's retries included) from the organization's shared budget."""
        environment = ExpressionMeasurementClientEnvironment(
            base=base_url, production=base_url.replace("http", "ws", 1)
        )
        self._http = timed_client("expression", timeout_s=timeout_s, pace=pace)
        self._client = AsyncExpressionMeasurementClient(
            api_key=api_key, environment=environment, httpx_client=self._http
        )
        self._options: RequestOptions = {"max_retries": max_retries, "timeout": timeout_s}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def measure_audio(
        self, wav: bytes, *, name: str = "audio.wav", options: AudioOptions = AudioOptions()
    ) -> Measured:
        """One 16 kHz mono 16-bit WAV (≤ 25 MB with the envelope)."""
        fields = _given(measurement_timer_ms=options.measurement_timer_ms)
        file: core.File = (name, wav, "audio/wav")
        with answers_judged():
            if fields:
                response = await self._client.audio.measure(
                    file=file, config=AudioFileConfig(**fields), request_options=self._options
                )
            else:  # nothing set: no config part at all, rather than an empty one
                response = await self._client.audio.measure(file=file, request_options=self._options)
        return Measured(response.request_id, response.run_id, response.model_dump(mode="json", exclude_none=True))

    async def measure_video(
        self, images: Sequence[bytes], *, face_state: str | None, options: FaceOptions = FaceOptions()
    ) -> Measured:
        """JPEG images of one request (each ≤ 2 MB, ≤ 25 MB in all); `face_state` continues face ids."""
        face = VideoFileConfigFace(
            return_face_state=True, **_given(threshold=options.threshold, min_size=options.min_size)
        )
        config = VideoFileConfig(face=face, **_given(face_state=face_state))
        files: list[core.File] = [(f"frame-{i}.jpg", image, "image/jpeg") for i, image in enumerate(images)]
        with answers_judged():
            response = await self._client.video.measure(file=files, config=config, request_options=self._options)
        result = response.model_dump(mode="json", exclude_none=True)
        state = result.pop("face_state", None)
        return Measured(response.request_id, response.run_id, result, state)

    async def run_bill(self, run_id: str) -> RunBill | None:
        """One run's bill (`GET /v1/expression/run/{run_id}`), or None while Hume has no such run: runs "may
        appear late and are rarely not recorded" (HUME-V1-FACTS §6), so the caller asks again later."""
        try:
            run = await self._client.runs.get(run_id, request_options=self._options)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise classify(exc) from None
        except ParsingError as exc:
            raise unparsable(exc) from None
        except httpx.TransportError as exc:
            raise HumeTransientError(f"Hume v1 unreachable: {type(exc).__name__}: {exc}") from None
        return _bill(run)

    async def runs_started_after(self, after: datetime, cursor: str | None = None) -> RunPage:
        """One page of the organization's runs started at or after `after` (`GET /v1/expression/run`, newest
        first, `started_after` inclusive; HUME-V1-FACTS §2)."""
        with answers_judged():
            page = await self._client.runs.list(
                page_size=RUNS_PAGE_SIZE, cursor=cursor, started_after=after, request_options=self._options
            )
        return RunPage([_bill(run) for run in page.runs], page.next_cursor)
