"""The retry schedule of our webhooks: read from WEBHOOK_RETRY_SCHEDULE_S, jittered, and finite."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.config.sources import SettingsError
from app.notifications.delivery import next_wait_s


def test_default_is_the_standard_webhooks_schedule() -> None:
    assert Settings.from_env({}).webhook_retry_schedule_s == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


def test_schedule_setting_is_parsed_and_checked() -> None:
    assert Settings.from_env({"WEBHOOK_RETRY_SCHEDULE_S": "0, 0.5,2"}).webhook_retry_schedule_s == (0, 0.5, 2)
    with pytest.raises(SettingsError, match="WEBHOOK_RETRY_SCHEDULE_S"):
        Settings.from_env({"WEBHOOK_RETRY_SCHEDULE_S": "0,soon"})
    with pytest.raises(SettingsError, match="WEBHOOK_RETRY_SCHEDULE_S"):
        Settings.from_env({"WEBHOOK_RETRY_SCHEDULE_S": "0,-5"})


def test_waits_are_jittered_within_ten_percent_and_run_out() -> None:
    schedule = (0.0, 5.0, 300.0)
    waits = [next_wait_s(schedule, 1) for _ in range(200)]
    assert all(w is not None and 4.5 <= w <= 5.5 for w in waits)
    assert len(set(waits)) > 1
    assert next_wait_s(schedule, 3) is None
