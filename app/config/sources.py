"""How settings are read and named in errors: the environment over a mapping, one-line messages naming the
variable, and the database URL in the forms SQLAlchemy and libpq take."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource

_KINDS = {"int_parsing": "a whole number", "int_from_float": "a whole number", "float_parsing": "a number",
          "bool_parsing": "a boolean (true/false)", "literal_error": "one of"}  # fmt: skip


class SettingsError(ValueError):
    """A setting is missing or malformed; the message (one line) names the variable."""


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy needs the psycopg 3 dialect spelled out; users write plain postgresql:// URLs."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise SettingsError(f"DATABASE_URL must be a postgresql:// URL, got {url.split('://')[0]}://...")


def libpq_url(url: str) -> str:
    """psycopg and procrastinate take the libpq form."""
    return sqlalchemy_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def one_line(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    name = str(error["loc"][0]).upper() if error["loc"] else "a setting"
    kind = _KINDS.get(error["type"])
    if kind == "one of":
        return f"{name} must be one of {error['ctx']['expected']}, got {error['input']!r}"
    if kind:
        return f"{name} must be {kind}, got {error['input']!r}"
    message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
    return f"{name} {message}" if message.startswith("must") else f"{name}: {message}"


class MappingSource(EnvSettingsSource):
    """The environment source over a given mapping (os.environ merged with .env, or a test's dict)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # An empty variable is unset (env_ignore_empty): compose's `${HUME_API_KEY:-}` must not turn the
        # emulator off with an empty key.
        return {key.lower(): value for key, value in self._environ.items() if value != ""}
