"""Hume access tokens for browser frontends: OAuth2 client credentials (HUME.md 4), cached and shared.

The Python SDK has no token helper, so the call is plain httpx. A token is served from memory until
shortly before it expires: inside `refresh_margin_s` of expiry the current token is still served while
one background call fetches the next; only a cold cache (or a token about to lapse) makes callers wait,
and then every concurrent caller waits on the same single upstream call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import structlog

from app.core import metrics
from app.hume.call_timing import timed_client
from app.hume.errors import HumeError, HumeRejectedError, HumeSunsetError, HumeTransientError
from app.hume.singleflight import SingleFlight

log = structlog.get_logger(__name__)

TOKEN_PATH = "/oauth2-cc/token"  # noqa: S105  # a URL path, not a password
DEFAULT_LIFETIME_S = 1800.0  # "Access tokens expire after 30 minutes" (HUME.md 4), if Hume omits expires_in
HARD_MARGIN_FRACTION = 0.2  # below this share of the refresh margin a token is too close to expiry to hand out
BACKGROUND_RETRY_S = 5.0  # at most one background refresh this often (matters only while they fail)


@dataclass(frozen=True)
class AccessToken:
    value: str
    lifetime_s: float
    expires_at: float
    """time.monotonic() at which Hume stops accepting it."""

    def remaining(self, now: float) -> float:
        return self.expires_at - now


class TokenProvider:
    """One cached Hume access token per process; `get()` returns it with its remaining lifetime."""

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        base_url: str,
        refresh_margin_s: float = 300.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = base_url.rstrip("/") + TOKEN_PATH
        self._auth = httpx.BasicAuth(api_key, secret_key)
        self._margin = refresh_margin_s
        self._clock = clock
        self._http = timed_client("tokens", timeout_s=timeout_s)
        self._token: AccessToken | None = None
        self._flight: SingleFlight[str, AccessToken] = SingleFlight()
        self._background: set[asyncio.Task[AccessToken]] = set()
        self._next_background_at = 0.0

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self._http.aclose()

    def _margins(self, token: AccessToken) -> tuple[float, float]:
        # A short-lived token (tests, or a Hume change) must not be refreshed before it is even served.
        soft = min(self._margin, token.lifetime_s / 2)
        return soft, soft * HARD_MARGIN_FRACTION

    async def get(self) -> tuple[str, float]:
        """(token, seconds it stays valid). Raises HumeError when Hume cannot issue one."""
        token = self._token
        now = self._clock()
        if token is not None:
            remaining = token.remaining(now)
            soft, hard = self._margins(token)
            if remaining > soft:
                return token.value, remaining
            if remaining > hard:
                self._refresh_in_background()
                return token.value, remaining
        fresh = await self._flight.do("token", self._fetch)
        return fresh.value, fresh.remaining(self._clock())

    def _refresh_in_background(self) -> None:
        # While Hume is down, requests in the margin must not each send it another refresh.
        now = self._clock()
        if self._flight.busy("token") or now < self._next_background_at:
            return
        self._next_background_at = now + BACKGROUND_RETRY_S
        task = asyncio.ensure_future(self._flight.do("token", self._fetch))
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[AccessToken]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The current token is still valid; the next try comes shortly (at once past the hard margin).
            log.warning("background token refresh failed", error=str(task.exception()))

    async def _fetch(self) -> AccessToken:
        try:
            token = await self._request()
        except HumeError:
            metrics.HUME_TOKEN_FETCHES.labels("error").inc()
            raise
        metrics.HUME_TOKEN_FETCHES.labels("ok").inc()
        self._token = token
        return token

    async def _request(self) -> AccessToken:
        started = self._clock()
        try:
            response = await self._http.post(self._url, auth=self._auth, data={"grant_type": "client_credentials"})
        except httpx.HTTPError as exc:
            raise HumeTransientError(f"token request failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            # Never echo Hume's body: it is not ours to show, and may describe our credentials.
            status = response.status_code
            if status == 429 or status >= 500:
                raise HumeTransientError(f"Hume's token endpoint answered {status}", status=status)
            if status in (404, 410):
                # The docs stopped naming a token endpoint when the voice APIs ended (HUME-V1-FACTS §1): a 404/410
                # here means it is gone, not that our credentials are wrong.
                raise HumeSunsetError(
                    f"Hume no longer serves access tokens at {self._url} (it answered {status}); its docs no longer "
                    "say which endpoint issues tokens since TTS and EVI ended on 2026-11-13",
                    status=status,
                )
            if status in (400, 401, 403):
                raise HumeRejectedError(
                    f"Hume refused the token request ({status}): check HUME_API_KEY and HUME_SECRET_KEY",
                    status=status,
                )
            raise HumeError(f"Hume's token endpoint answered {status}", status=status)
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME_S)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HumeError("Hume's token response has no access_token") from None
        if not isinstance(value, str) or not value or lifetime <= 0:
            raise HumeError("Hume's token response has no usable access_token")
        # Lifetime counts from when we asked: never believe a token lives longer than it does.
        token = AccessToken(value=value, lifetime_s=lifetime, expires_at=started + lifetime)
        log.info("fetched a Hume access token", expires_in=lifetime, ms=round((self._clock() - started) * 1000, 1))
        return token
