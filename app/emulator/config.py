"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves.

    Real Hume is never slower or faster than it is; the emulator runs on a simulated clock so
    that tests finish quickly (``time_scale`` simulated seconds pass per real second) while
    ``realistic`` makes the simulated processing time resemble Hume's (30-50 % of media length).
    """

    # None: accept any non-empty key, so developers need no set-up.
    api_key: str | None = None
    # None: the token endpoint accepts any non-empty secret.
    secret_key: str | None = None
    # Simulated seconds per real second. 50 keeps a short job under 0.1 s.
    time_scale: float = 50.0
    realistic: bool = False
    # Batch callback retries are our assumption (Hume never documented a policy).
    callback_max_attempts: int = 5
    callback_backoff_s: float = 0.2
    callback_timeout_s: float = 10.0
    evi_webhook_url: str | None = None
    # None: sign EVI webhooks with the API key (what Hume did before signing keys existed).
    evi_signing_key: str | None = None
    # Default media length (seconds) when a URL declares none: drawn in this range per URL.
    default_min_duration_s: float = 8.0
    default_max_duration_s: float = 40.0
    # Access tokens issued by /oauth2-cc/token live this long (Hume: 30 minutes).
    token_lifetime_s: int = 1800
    # EVI chats listed when the emulator starts, so a fresh instance has something to show.
    seed_evi_chats: int = 3
    # Status used for batch paths in sunset mode (Hume now answers 404 or 410).
    sunset_status: int = 404
    # Requests per organization (API key, or the key a bearer token was issued for) per sliding minute on
    # every Hume path, past which the emulator answers 429. Hume: "each organization can make up to 600
    # requests per minute" (HUME-V1-FACTS §4, LE intro). None: no limit.
    requests_per_minute: int | None = 600
    # API keys whose organization is not enabled for v1 (a limited release, access by request to sales,
    # HUME.md §0): their /v1/expression requests get 403 `forbidden` (HUME-V1-FACTS §1, §5). More keys can be
    # marked at run time with the fault control `{"v1_not_enabled": [...]}`.
    v1_not_enabled_keys: frozenset[str] = frozenset()
    # Audio Decisions (decisions.py): keys whose organization has no payment method on file answer 402 on the
    # billed endpoint, keys whose organization lacks access answer 403 (AUDIO-DECISIONS-FACTS §4).
    no_payment_method_keys: frozenset[str] = frozenset()
    decisions_not_enabled_keys: frozenset[str] = frozenset()
    # D/runs: a run appears after a delay (get answers 404 and list omits it meanwhile); its length is unstated.
    decisions_run_delay_s: float = 0.2
    # Realtime send rate (HUME-V1-FACTS §4: at most 1 s of audio per second, 3 video frames per second; faster
    # frames "may get rate_limited"): how far, in seconds, a session's media may run ahead of the wall clock since
    # its first frame before frames are refused. Hume's tolerance is undocumented; 1 s absorbs a browser's
    # jitter. Tests of other behaviour raise it so that they can send recorded media at once.
    realtime_rate_slack_s: float = 1.0
    # A realtime session that sends nothing for this long ends with `session.closed` reason `idle_timeout`
    # (HUME-V1-FACTS §4: the reason exists, the duration is undocumented). 60 s keeps a session through a paused
    # camera or a muted microphone yet ends it well before the 5 minutes after which the runs API reports an
    # unheard live run as errored (§6), so an abandoned session ends `ended`, not `errored`.
    realtime_idle_timeout_s: float = 60.0

    @property
    def effective_signing_key(self) -> str:
        """Key for EVI webhook HMACs: the dedicated signing key, else the API key."""
        return self.evi_signing_key or self.api_key or "emulator-signing-key"
