"""The Hume gateway: the only code that calls Hume's batch API (through the official SDK).

Errors come out as app.hume.errors types. Predictions are fetched as raw bytes rather than through the
SDK's pydantic models: a one-hour job is tens of MB of JSON and the models would multiply that in memory.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any

import httpx
from hume import AsyncHumeClient
from hume.core.api_error import ApiError
from hume.expression_measurement.batch import Models
from pydantic import ValidationError

from app.config import HUME_VOICE_URL
from app.hume.call_timing import timed_client
from app.hume.errors import (
    HumeError,
    HumeNotFoundError,
    HumeRejectedError,
    HumeSunsetError,
    HumeTransientError,
)


@dataclass(frozen=True)
class JobState:
    """Hume's view of a batch job (HUME.md 1.4); timestamps in Unix milliseconds."""

    status: str
    created_ms: int | None = None
    started_ms: int | None = None
    ended_ms: int | None = None
    num_predictions: int | None = None
    num_errors: int | None = None
    message: str | None = None


def validate_models(models: dict[str, Any]) -> dict[str, Any]:
    """Check model options against the SDK's own schema; returns them as Hume will receive them."""
    try:
        parsed = Models.model_validate(models)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"models.{where}: {first['msg']}") from None
    return parsed.model_dump(exclude_unset=True, mode="json")


def _retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "fault"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else str(value)
    return str(body)[:500] if body else "no message"


def translate(exc: Exception, *, what: str, batch: bool = True) -> HumeError:
    """Map SDK and transport exceptions onto our error types."""
    if isinstance(exc, HumeError):
        return exc
    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        if status == 429 or status >= 500 or status == 408:
            return HumeTransientError(
                f"{what}: Hume answered {status}", status=status, retry_after=_retry_after(exc.headers)
            )
        if batch and status == 410:
            return HumeSunsetError(status=status)
        if status == 404:
            return HumeNotFoundError(f"{what}: Hume answered 404 ({_message(exc.body)})", status=status)
        return HumeRejectedError(f"{what}: {_message(exc.body)}", status=status)
    if isinstance(exc, httpx.TimeoutException | httpx.TransportError):
        return HumeTransientError(f"{what}: {type(exc).__name__}: {exc}")
    return HumeError(f"{what}: {type(exc).__name__}: {exc}")


class HumeGateway:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = (base_url or HUME_VOICE_URL).rstrip("/")
        self._api_key = api_key
        self._max_retries = max_retries
        self._http = timed_client("batch", timeout_s=timeout_s)
        self.client = AsyncHumeClient(api_key=api_key, base_url=self.base_url, httpx_client=self._http)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def _options(self) -> Any:
        return {"max_retries": self._max_retries}

    async def start_job(
        self,
        *,
        urls: list[str],
        text: list[str],
        models: dict[str, Any] | None,
        callback_url: str | None,
    ) -> str:
        try:
            job_id = await self.client.expression_measurement.batch.start_inference_job(
                urls=urls or None,
                text=text or None,
                models=Models.model_validate(models) if models else None,
                callback_url=callback_url,
                request_options=self._options,
            )
            return str(job_id)
        except Exception as exc:
            error = translate(exc, what="start job")
            if isinstance(error, HumeNotFoundError):
                # The path itself is gone: that is the sunset, not an unknown id.
                raise HumeSunsetError(status=error.status) from exc
            raise error from exc

    async def job_state(self, hume_job_id: str) -> JobState:
        try:
            job = await self.client.expression_measurement.batch.get_job_details(
                hume_job_id, request_options=self._options
            )
        except Exception as exc:
            raise translate(exc, what=f"job {hume_job_id}") from exc
        state = job.state
        return JobState(
            status=str(state.status),
            created_ms=getattr(state, "created_timestamp_ms", None),
            started_ms=getattr(state, "started_timestamp_ms", None),
            ended_ms=getattr(state, "ended_timestamp_ms", None),
            num_predictions=getattr(state, "num_predictions", None),
            num_errors=getattr(state, "num_errors", None),
            message=getattr(state, "message", None),
        )

    async def predictions(self, hume_job_id: str) -> bytes:
        """The predictions document, undecoded (the same body the SDK's get_job_predictions parses)."""
        url = f"{self.base_url}/v0/batch/jobs/{hume_job_id}/predictions"
        try:
            response = await self._http.get(url, headers={"X-Hume-Api-Key": self._api_key})
        except Exception as exc:
            raise translate(exc, what=f"predictions of {hume_job_id}") from exc
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise translate(
                ApiError(status_code=response.status_code, headers=dict(response.headers), body=body),
                what=f"predictions of {hume_job_id}",
            )
        return response.content
