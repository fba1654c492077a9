"""Settings are read once from the environment and fail fast, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.config.sources import SettingsError, libpq_url, sqlalchemy_url


def test_defaults_use_the_emulator_and_local_callbacks() -> None:
    """With no Hume credentials the service runs against its emulator and calls back to itself."""
    settings = Settings.from_env({})
    assert settings.uses_emulator
    assert settings.callback_base_url == "http://127.0.0.1:8000"
    assert settings.database_url is None


def test_environment_is_read() -> None:
    """Every documented variable lands in the settings."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u:p@db:5432/x",
            "HUME_API_KEY": "k",
            "PUBLIC_BASE_URL": "https://hooks.example.com/",
            "PORT": "9000",
            "RUN_WORKER": "false",
            "HUME_WEBHOOK_TOLERANCE_S": "60",
        }
    )
    assert not settings.uses_emulator
    assert settings.port == 9000
    assert settings.run_worker is False
    assert settings.callback_base_url == "https://hooks.example.com"
    assert settings.hume_webhook_tolerance_s == 60
    assert settings.webhook_signing_keys == ("k",)


def test_secrets_stay_out_of_repr() -> None:
    """A logged settings object never shows keys."""
    text = repr(Settings.from_env({"HUME_API_KEY": "very-secret", "HUME_SECRET_KEY": "also-secret"}))
    assert "very-secret" not in text and "also-secret" not in text


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"RUN_WORKER": "maybe"}, "RUN_WORKER"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    """A malformed variable stops start-up with a message naming it."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_signing_key_rotation_order() -> None:
    """The dedicated signing key comes first, the previous key stays valid during a rotation."""
    settings = Settings.from_env(
        {"HUME_API_KEY": "api", "HUME_WEBHOOK_SIGNING_KEY": "new", "HUME_WEBHOOK_PREVIOUS_SIGNING_KEY": "old"}
    )
    assert settings.webhook_signing_keys == ("new", "old")


def test_database_url_forms() -> None:
    """Plain postgres URLs work for SQLAlchemy (psycopg 3 dialect) and libpq alike."""
    assert sqlalchemy_url("postgresql://a@h/db") == "postgresql+psycopg://a@h/db"
    assert sqlalchemy_url("postgres://a@h/db") == "postgresql+psycopg://a@h/db"
    assert libpq_url("postgresql+psycopg://a@h/db") == "postgresql://a@h/db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "8000.9"}, "PORT must be a whole number, got '8000.9'"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"),
        ({"WORKER_FETCH_LOOPS": "0"}, "WORKER_FETCH_LOOPS"),
        ({"HUME_WEBHOOK_TOLERANCE_S": "soon"}, "HUME_WEBHOOK_TOLERANCE_S must be a number, got 'soon'"),
    ],
)
def test_bad_values_fail_in_one_line(env: dict[str, str], message: str) -> None:
    """An integer setting refuses a fraction; every message is one line a person can act on."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .env file supplies settings; a variable set in the environment overrides it."""
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9100\nCORS_ALLOW_ORIGINS=http://a.test, http://b.test\nRUN_WORKER=false\n")
    monkeypatch.setenv("PORT", "9200")
    settings = Settings.from_env(env_file=env_file)
    assert settings.port == 9200
    assert settings.cors_allow_origins == ("http://a.test", "http://b.test")
    assert settings.run_worker is False


def test_keyword_construction_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings(...) is exactly what the caller wrote (tests rely on it); only from_env reads variables."""
    monkeypatch.setenv("PORT", "9300")
    settings = Settings(database_url="postgresql://u@h/db")
    assert settings.port == 8000
    assert settings.replace(port=9400).port == 9400
    with pytest.raises(SettingsError, match="PORT"):
        settings.replace(port="many")


def test_emulator_port_follows_port() -> None:
    """The built-in emulator listens on PORT + 1 unless EMULATOR_PORT says otherwise."""
    assert Settings.from_env({"PORT": "18500"}).emulator_url == "http://127.0.0.1:18501"
    assert Settings.from_env({"PORT": "18500", "EMULATOR_PORT": "19000"}).emulator_url == "http://127.0.0.1:19000"


def test_an_empty_variable_is_unset() -> None:
    """compose passes `${HUME_API_KEY:-}` as an empty string: that must mean no key (the built-in emulator),
    not an empty key sent to Hume."""
    settings = Settings.from_env({"HUME_API_KEY": "", "HUME_CLOUD_URL": "", "PORT": "8000"})
    assert (
        settings.uses_emulator and settings.hume_api_key is None and settings.cloud_url == settings.emulator_cloud_url
    )


def test_each_hume_host_has_its_own_setting_and_one_setting_points_both() -> None:
    real = Settings.from_env({"HUME_API_KEY": "k"})
    assert (real.cloud_url, real.hume_url) == ("https://api.cloud.hume.ai", "https://api.hume.ai")
    assert real.voice_host_is_hume and real.default_backend == "v1" and real.cloud_key == "k"
    both = Settings.from_env({"HUME_API_KEY": "k", "HUME_BASE_URL": "http://stub:9000/"})
    assert (both.cloud_url, both.hume_url) == ("http://stub:9000", "http://stub:9000") and not both.voice_host_is_hume
    each = Settings.from_env({"HUME_BASE_URL": "http://stub:9000", "HUME_CLOUD_URL": "http://cloud:1"})
    assert (each.cloud_url, each.hume_url) == ("http://cloud:1", "http://stub:9000")
    # Which URLs are set never decides the backend: any Hume setting means v1, none the built-in emulator's batch.
    assert each.default_backend == "v1" and Settings.from_env({}).default_backend == "batch"
    assert Settings.from_env({"HUME_BASE_URL": "http://stub:9000", "HUME_BACKEND": "batch"}).default_backend == "batch"
    split = Settings.from_env({"HUME_API_KEY": "voice", "HUME_CLOUD_API_KEY": "cloud"})
    assert (split.hume_key, split.cloud_key) == ("voice", "cloud")
