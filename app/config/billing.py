"""Settings of what Hume billed (HUME-V1-FACTS §6 runs): reading each run's `metered_seconds`, pricing them,
and the check for runs no job of ours owns. A part of Settings (app/config/__init__.py inherits it)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class BillingSettings(BaseSettings):
    hume_price_per_minute: float | None = Field(default=None, ge=0)
    """What Hume charges per metered minute, in your currency, as your Hume contract or
    https://www.hume.ai/pricing states it (v1 is in limited release: the price is agreed with Hume's sales).
    Unset: /v1/usage and the usage page show seconds only, no cost."""
    hume_run_read_delay_s: float = Field(default=30.0, gt=0)
    """A run's billed seconds are first read this long after Hume answered its request, and each retry waits
    twice as long as the one before: Hume says runs "may appear late" (HUME-V1-FACTS §6 RUNS)."""
    hume_run_read_tries: int = Field(default=6, ge=1)
    """Reads of a run before our estimate is kept for good (marked `estimate`): with the 30 s delay, about
    32 minutes of retries. Hume says runs "are rarely not recorded" (HUME-V1-FACTS §6 RUNS)."""
    hume_run_read_batch: int = Field(default=50, ge=1, le=1000)
    """Runs read per task; each read is one request of the organization's shared per-minute budget."""
    hume_unowned_runs_interval_s: float = Field(default=3600.0, ge=60)
    """How often (at most) the reconciler lists Hume's runs to find those no job of ours owns."""
    hume_unowned_runs_lookback_h: float = Field(default=24.0, gt=0, le=24 * 31)
    """How far back that check lists runs (`started_after`)."""
    hume_unowned_runs_grace_s: float = Field(default=600.0, ge=0)
    """Runs started more recently than this are not judged: a request still in flight has a run at Hume and
    no run id on our side yet."""
    hume_unowned_runs_max_pages: int = Field(default=10, ge=1, le=1000)
    """Pages of 200 runs read per check at most (10 pages: 2,000 runs, 10 requests an hour)."""
