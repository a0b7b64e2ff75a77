"""Settings per environment, read from BROKER_* variables.

`load_settings()` is the only reader of the environment; the app factory takes its result
(or a plain mapping in tests), so nothing here runs at import time.
"""

from __future__ import annotations

import os
from typing import Mapping

ENVIRONMENTS = ("development", "test", "production")

# Every variable the broker reads, with its meaning: the README's configuration table is
# generated from the same list (`broker config`), so the two never drift apart.
VARIABLES: dict[str, str] = {
    "BROKER_ENV": "development (default), test or production",
    "BROKER_DATABASE_URL": "SQLAlchemy URL; default: SQLite file broker.sqlite3 in the instance folder",
    "BROKER_SECRET_KEY": "secret for signing; required in production",
    "BROKER_INSTANCE_PATH": "folder for the SQLite database and local files; default: ./instance",
    "BROKER_MAX_BODY_BYTES": "largest accepted request body in bytes; default 1048576",
    "BROKER_LOG_LEVEL": "logging level; default INFO",
    "BROKER_TEST_DATABASE_URL": "tests only: a PostgreSQL server URL; the suite creates and drops its own database there",
}

_DEFAULTS: dict[str, object] = {
    "BROKER_ENV": "development",
    "MAX_CONTENT_LENGTH": 1_048_576,
    "LOG_LEVEL": "INFO",
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "INSTANCE_PATH": None,
}


class ConfigurationError(RuntimeError):
    """The settings are not good enough to start in this environment."""


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Build the app's settings from BROKER_* variables (os.environ by default)."""
    env = os.environ if environ is None else environ
    settings = dict(_DEFAULTS)
    settings["BROKER_ENV"] = env.get("BROKER_ENV", "development")
    if settings["BROKER_ENV"] not in ENVIRONMENTS:
        raise ConfigurationError(
            f"BROKER_ENV={settings['BROKER_ENV']!r} is not one of {', '.join(ENVIRONMENTS)}"
        )
    if "BROKER_DATABASE_URL" in env:
        settings["DATABASE_URL"] = env["BROKER_DATABASE_URL"]
    if "BROKER_SECRET_KEY" in env:
        settings["SECRET_KEY"] = env["BROKER_SECRET_KEY"]
    if "BROKER_INSTANCE_PATH" in env:
        settings["INSTANCE_PATH"] = env["BROKER_INSTANCE_PATH"]
    if "BROKER_LOG_LEVEL" in env:
        settings["LOG_LEVEL"] = env["BROKER_LOG_LEVEL"].upper()
    if "BROKER_MAX_BODY_BYTES" in env:
        try:
            settings["MAX_CONTENT_LENGTH"] = int(env["BROKER_MAX_BODY_BYTES"])
        except ValueError:
            raise ConfigurationError("BROKER_MAX_BODY_BYTES must be an integer number of bytes") from None
    check_settings(settings)
    return settings


def check_settings(settings: Mapping[str, object]) -> None:
    """Refuse to run production on development defaults, naming every missing setting."""
    if settings.get("BROKER_ENV") != "production":
        return
    missing = []
    if not settings.get("SECRET_KEY"):
        missing.append("BROKER_SECRET_KEY is not set")
    url = str(settings.get("DATABASE_URL") or "")
    if not url:
        missing.append("BROKER_DATABASE_URL is not set")
    elif url.startswith("sqlite"):
        missing.append("BROKER_DATABASE_URL points at SQLite; production needs PostgreSQL")
    if missing:
        raise ConfigurationError("Refusing to start in production: " + "; ".join(missing) + ".")
