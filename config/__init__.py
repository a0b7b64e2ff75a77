"""Settings per environment, read from BROKER_* variables.

`load_settings()` is the only reader of the environment; the app factory takes its result
(or a plain mapping in tests), so nothing here runs at import time.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from decimal import Decimal, InvalidOperation
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from scheduler.schedule import DEFAULT_SCHEDULES, SCHEDULED_JOBS

if TYPE_CHECKING:
    from adapters.base import CarrierConfig

ENVIRONMENTS = ("development", "test", "production")

# Every variable the broker reads, with its meaning. The README's configuration table is written
# by hand from this list (there is no command that prints it): change the two together.
VARIABLES: dict[str, str] = {
    "BROKER_ENV": "development (default), test or production",
    "BROKER_DATABASE_URL": "SQLAlchemy URL; default: SQLite file broker.sqlite3 in the instance folder",
    "BROKER_SECRET_KEY": "secret for signing; required in production",
    "BROKER_INSTANCE_PATH": "folder for the SQLite database and local files; default: instance/ in the checkout "
    "(an editable install), or <venv>/var/broker-instance when installed; never the current directory",
    "BROKER_MAX_BODY_BYTES": "largest accepted request body in bytes; default 1048576",
    "BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES": "most bytes an uploaded XLSX catalog may unpack to, by its zip directory; "
    "default 20971520 (20 MiB)",
    "BROKER_UPLOAD_MAX_COMPRESSION_RATIO": "most an uploaded XLSX may be compressed (unpacked : packed); default 100",
    "BROKER_UPLOAD_MAX_ROWS": "most data rows in one uploaded catalog; more refuses the file whole; default 10000",
    "BROKER_LOG_LEVEL": "logging level; default INFO",
    "BROKER_EVIDENCE_STORE": "where subsidy evidence files are kept: local (default, a folder) or s3 "
    "(an S3-compatible object store, the production option; needs the s3 extra)",
    "BROKER_EVIDENCE_DIR": "local store only: the folder for evidence files; default: evidence/ in the instance folder",
    "BROKER_EVIDENCE_MAX_BYTES": "largest evidence file accepted, in bytes; default 20971520 (20 MiB)",
    "BROKER_S3_ENDPOINT_URL": "s3 store: the object store's URL, e.g. https://minio.internal:9000; default: AWS's",
    "BROKER_S3_BUCKET": "s3 store: the bucket evidence files go in; required with BROKER_EVIDENCE_STORE=s3",
    "BROKER_S3_ACCESS_KEY": "s3 store: the access key id; required with BROKER_EVIDENCE_STORE=s3",
    "BROKER_S3_SECRET_KEY": "s3 store: the secret access key; required with BROKER_EVIDENCE_STORE=s3",
    "BROKER_S3_REGION": "s3 store: the region requests are signed for; default us-east-1",
    "BROKER_SETTLEMENT_FOUR_EYES_ABOVE": "yuan: a settlement statement paying more than this needs a second, different "
    "staff account's approval (four eyes) before it is written off; default 100000",
    "BROKER_TEST_DATABASE_URL": "tests only: a PostgreSQL server URL; the suite creates and drops its own database there",
    "BROKER_CARRIERS_FILE": "TOML or JSON file of per-carrier settings (base URL, credential variable names, "
    "timeouts, sync schedule, webhook secret variable); default outside production: the simulators on "
    "127.0.0.1:8001 (telecom), :8002 (mobile), :8003 (unicom)",
    "BROKER_CARRIER_<CODE>_BASE_URL": "overrides one carrier's base URL, e.g. BROKER_CARRIER_TELECOM_BASE_URL",
    "BROKER_CARRIER_<CODE>_<CREDENTIAL>": "a carrier's credentials and webhook secret, read from the variables its "
    "settings name; the default settings use BROKER_CARRIER_TELECOM_TOKEN, BROKER_CARRIER_MOBILE_APP_KEY / "
    "_APP_SECRET, BROKER_CARRIER_UNICOM_USERNAME / _PASSWORD and BROKER_CARRIER_<CODE>_WEBHOOK_SECRET",
    "BROKER_SCHEDULE_<JOB>": "cron (Asia/Shanghai; 5 fields, or 6 with seconds first) for a scheduled job, or 'off'; "
    "jobs and defaults: " + ", ".join(
        f"{job.name.upper()} '{job.default_cron}'" + (f" ({job.note})" if job.note else "") for job in SCHEDULED_JOBS
    )
    + "; carriers' syncs follow their sync_schedule",
    "BROKER_MISFIRE_GRACE_SECONDS": "a firing missed while no scheduler ran is run once on start-up if younger than this; "
    "default 3600",
    "BROKER_MATCHING_TIME_LIMIT": "seconds the matching engine may take in a scheduled cycle; default 60",
    "BROKER_SURVEY_REMINDER_DAYS": "days before a demand survey closes that its reminder emails go out; default 3",
    "BROKER_EXPORT_INLINE_ROWS": "a district report with more rows than this is exported in the background only "
    "(后台导出): its CSV/XLSX links give way to the background export; default 50000",
    "BROKER_EXPORT_KEEP_DAYS": "days a background export's file is kept for download before the run_exports job "
    "deletes it; default 7",
    "BROKER_TRANSIENT_RETRIES": "how many times a request or scheduled job is tried when the database reports a "
    "deadlock, a serialization failure or (SQLite) a lock held too long; then 503 with Retry-After; default 4",
    "BROKER_SQLITE_BUSY_TIMEOUT": "SQLite only: seconds to wait for another writer before a try counts as failed; default 30",
    "BROKER_WEBHOOK_ALLOWED_HOSTS": "comma-separated host names, IP addresses or CIDR networks that webhooks may reach "
    "although they are not public (matched against the URL's host as written); default: none (`broker demo`: 127.0.0.1)",
    "BROKER_OIDC_DISCOVERY_URL": "sign-in through OpenID Connect (the city's unified login, 一网通办): the identity "
    "provider's discovery URL, https (plain http only to 127.0.0.1/localhost outside production); default: none, "
    "no OIDC sign-in (the local simulator, `broker simulate idp`: http://127.0.0.1:8004/.well-known/openid-configuration)",
    "BROKER_OIDC_CLIENT_ID": "the broker's client id at the identity provider; required with BROKER_OIDC_DISCOVERY_URL",
    "BROKER_OIDC_CLIENT_SECRET": "the broker's client secret at the identity provider; required with "
    "BROKER_OIDC_DISCOVERY_URL",
    "BROKER_SMTP_HOST": "the SMTP server the email outbox sends through; unset (development): each email is written "
    "as an .eml file to outbox/ in the instance folder instead",
    "BROKER_SMTP_PORT": "the SMTP server's port; default 587",
    "BROKER_SMTP_USER": "the SMTP login's user name; unset: no login",
    "BROKER_SMTP_PASSWORD": "the SMTP login's password",
    "BROKER_SMTP_STARTTLS": "whether to upgrade the SMTP connection with STARTTLS (true or false); default true",
    "BROKER_MAIL_FROM": "the From address of the broker's emails; default 硅巷资源撮合平台 <noreply@broker.localhost>",
    "BROKER_PUBLIC_URL": "the console's address as people reach it, for the links in notification emails (the "
    "console page and the one-click opt-out); default http://127.0.0.1:5000",
    "BROKER_SESSION_IDLE_MINUTES": "console only: minutes without a request after which a signed-in person's session "
    "ends and they sign in again; default 30",
    "BROKER_APPEAL_ANSWER_WORKING_DAYS": "working days (the Chinese calendar, holidays and adjusted working "
    "weekends counted) an appeal may wait for the district's answer before the staff inbox marks it overdue; default 5",
    "BROKER_DISTRICT_CONTACT": "whom a company reaches about its registration (named in the 409 on a credit code "
    "that is already registered); default: the district science commission's office, from its published replies",
}

# From the commission's published replies (长科委〔2026〕12号): its office and switchboard, not a person.
DEFAULT_DISTRICT_CONTACT = (
    "长宁区科学技术委员会 (Changning District Science and Technology Commission), "
    "tel. 021-22050983, 长宁路599号925室 (Room 925, 599 Changning Road)"
)

_DEFAULTS: dict[str, object] = {
    "BROKER_ENV": "development",
    "MAX_CONTENT_LENGTH": 1_048_576,
    "UPLOAD_MAX_UNCOMPRESSED_BYTES": 20 * 1024 * 1024,
    "UPLOAD_MAX_COMPRESSION_RATIO": 100.0,
    "UPLOAD_MAX_ROWS": 10_000,
    "LOG_LEVEL": "INFO",
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "INSTANCE_PATH": None,
    "CARRIERS": {},
    "SCHEDULES": DEFAULT_SCHEDULES,
    "MISFIRE_GRACE_SECONDS": 3600,
    "MATCHING_TIME_LIMIT": 60.0,
    "SURVEY_REMINDER_DAYS": 3,
    "EXPORT_INLINE_ROWS": 50_000,
    "EXPORT_KEEP_DAYS": 7,
    "TRANSIENT_RETRIES": 4,
    "SQLITE_BUSY_TIMEOUT": 30.0,
    "WEBHOOK_ALLOWED_HOSTS": (),
    "DISTRICT_CONTACT": DEFAULT_DISTRICT_CONTACT,
    "EVIDENCE_STORE": "local",
    "EVIDENCE_DIR": None,
    "EVIDENCE_MAX_BYTES": 20 * 1024 * 1024,
    "S3_ENDPOINT_URL": None,
    "S3_BUCKET": None,
    "S3_ACCESS_KEY": None,
    "S3_SECRET_KEY": None,
    "S3_REGION": None,
    "SETTLEMENT_FOUR_EYES_ABOVE": "100000",
    "OIDC_DISCOVERY_URL": None,
    "OIDC_CLIENT_ID": None,
    "OIDC_CLIENT_SECRET": None,
    "SMTP_HOST": None,
    "SMTP_PORT": 587,
    "SMTP_USER": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": True,
    "MAIL_FROM": None,
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "SESSION_IDLE_MINUTES": 30,
    "APPEAL_ANSWER_WORKING_DAYS": 5,
}

# Outside production, carriers default to their simulators (`broker simulate CODE --port N`).
# Credentials are named by environment variable here and never given inline.
DEMO_CARRIERS: dict[str, dict[str, Any]] = {
    "telecom": {
        "base_url": "http://127.0.0.1:8001",
        "credentials": {"token": "BROKER_CARRIER_TELECOM_TOKEN"},
        "webhook_secret": "BROKER_CARRIER_TELECOM_WEBHOOK_SECRET",
        "sync_schedule": "*/30 * * * *",
    },
    "mobile": {
        "base_url": "http://127.0.0.1:8002",
        "credentials": {"app_key": "BROKER_CARRIER_MOBILE_APP_KEY", "app_secret": "BROKER_CARRIER_MOBILE_APP_SECRET"},
        "webhook_secret": "BROKER_CARRIER_MOBILE_WEBHOOK_SECRET",
        "sync_schedule": "*/30 * * * *",
    },
    "unicom": {
        "base_url": "http://127.0.0.1:8003",
        "credentials": {"username": "BROKER_CARRIER_UNICOM_USERNAME", "password": "BROKER_CARRIER_UNICOM_PASSWORD"},
        "sync_schedule": "0 * * * *",
    },
}

_VARIABLE_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class CarrierSettings:
    """One carrier's settings: how its adapter reaches it, its webhook secret's variable, its sync cron."""

    code: str
    adapter: CarrierConfig
    webhook_secret_variable: str | None = None
    sync_schedule: str | None = None  # a crontab expression in Asia/Shanghai time


def parse_carriers(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, CarrierSettings]:
    """CarrierSettings by carrier code from {code: {base_url, credentials, ...}}, with
    BROKER_CARRIER_<CODE>_BASE_URL overrides; ConfigurationError names the carrier and the problem."""
    from adapters.base import CarrierConfig

    carriers: dict[str, CarrierSettings] = {}
    for code, raw in data.items():
        where = f"carrier {code!r}"
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"{where}: settings must be a table of keys")
        values = dict(raw)
        webhook_secret = values.pop("webhook_secret", None)
        schedule = values.pop("sync_schedule", None)
        override = environ.get(f"BROKER_CARRIER_{code.upper()}_BASE_URL")
        if override:
            values["base_url"] = override
        named = list(dict(values.get("credentials") or {}).values()) + ([webhook_secret] if webhook_secret else [])
        for variable in named:
            if not isinstance(variable, str) or not _VARIABLE_NAME.match(variable):
                # Never echo the value: it may be a secret pasted where its variable's name belongs.
                raise ConfigurationError(
                    f"{where}: credentials and webhook_secret name environment variables "
                    "(upper-case letters, digits, _), never the secret itself"
                )
        if schedule is not None:
            _check_cron(where, schedule)
        try:
            config = CarrierConfig.from_mapping(values)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"{where}: {error}") from None
        carriers[code] = CarrierSettings(code, config, webhook_secret, schedule)
    return carriers


def _check_cron(where: str, schedule: object) -> None:
    from apscheduler.triggers.cron import CronTrigger

    from broker.clock import SHANGHAI

    try:
        CronTrigger.from_crontab(str(schedule), timezone=SHANGHAI)
    except ValueError as error:
        raise ConfigurationError(f"{where}: sync_schedule {schedule!r} is not a crontab expression: {error}") from None


def _read_carriers_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            content = handle.read()
        data = json.loads(content) if path.lower().endswith(".json") else tomllib.loads(content.decode())
    except (OSError, ValueError) as error:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ConfigurationError(f"BROKER_CARRIERS_FILE={path!r} cannot be read: {error}") from None
    carriers = data.get("carriers") if isinstance(data, dict) else None
    if not isinstance(carriers, dict):
        raise ConfigurationError(f"BROKER_CARRIERS_FILE={path!r} needs a [carriers.<code>] table per carrier")
    return carriers


class ConfigurationError(RuntimeError):
    """The settings are not good enough to start in this environment."""


def _yuan(name: str, text: str) -> str:
    """A yuan amount of at most two decimal places, not negative, kept as its exact text."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigurationError(f"{name} must be an amount in yuan, e.g. 100000") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ConfigurationError(f"{name} must be an amount in yuan, not negative, at most two decimal places")
    return str(amount)


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
    if env.get("BROKER_DISTRICT_CONTACT", "").strip():
        settings["DISTRICT_CONTACT"] = env["BROKER_DISTRICT_CONTACT"].strip()
    if "BROKER_LOG_LEVEL" in env:
        settings["LOG_LEVEL"] = env["BROKER_LOG_LEVEL"].upper()
    if env.get("BROKER_EVIDENCE_STORE", "").strip():
        settings["EVIDENCE_STORE"] = env["BROKER_EVIDENCE_STORE"].strip().lower()
    for key in ("SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD", "MAIL_FROM", "PUBLIC_URL"):
        if env.get(f"BROKER_{key}", "").strip():
            settings[key] = env[f"BROKER_{key}"].strip()
    if env.get("BROKER_SMTP_STARTTLS", "").strip():
        flag = env["BROKER_SMTP_STARTTLS"].strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigurationError("BROKER_SMTP_STARTTLS must be true or false")
        settings["SMTP_STARTTLS"] = flag in ("true", "1", "yes")
    for key in ("EVIDENCE_DIR", "S3_ENDPOINT_URL", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION",
                "OIDC_DISCOVERY_URL", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if env.get(f"BROKER_{key}", "").strip():
            settings[key] = env[f"BROKER_{key}"].strip()
    if "BROKER_MAX_BODY_BYTES" in env:
        try:
            settings["MAX_CONTENT_LENGTH"] = int(env["BROKER_MAX_BODY_BYTES"])
        except ValueError:
            raise ConfigurationError("BROKER_MAX_BODY_BYTES must be an integer number of bytes") from None
    if "BROKER_CARRIERS_FILE" in env:
        carriers = _read_carriers_file(env["BROKER_CARRIERS_FILE"])
    else:
        carriers = {} if settings["BROKER_ENV"] == "production" else DEMO_CARRIERS
    settings["CARRIERS"] = parse_carriers(carriers, env)
    settings["SCHEDULES"] = {job.name: env.get(job.setting, job.default_cron) for job in SCHEDULED_JOBS}
    for name, key, kind in (
        ("BROKER_MISFIRE_GRACE_SECONDS", "MISFIRE_GRACE_SECONDS", int),
        ("BROKER_MATCHING_TIME_LIMIT", "MATCHING_TIME_LIMIT", float),
        ("BROKER_SURVEY_REMINDER_DAYS", "SURVEY_REMINDER_DAYS", int),
        ("BROKER_EXPORT_INLINE_ROWS", "EXPORT_INLINE_ROWS", int),
        ("BROKER_EXPORT_KEEP_DAYS", "EXPORT_KEEP_DAYS", int),
        ("BROKER_TRANSIENT_RETRIES", "TRANSIENT_RETRIES", int),
        ("BROKER_SQLITE_BUSY_TIMEOUT", "SQLITE_BUSY_TIMEOUT", float),
        ("BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES", "UPLOAD_MAX_UNCOMPRESSED_BYTES", int),
        ("BROKER_UPLOAD_MAX_COMPRESSION_RATIO", "UPLOAD_MAX_COMPRESSION_RATIO", float),
        ("BROKER_UPLOAD_MAX_ROWS", "UPLOAD_MAX_ROWS", int),
        ("BROKER_EVIDENCE_MAX_BYTES", "EVIDENCE_MAX_BYTES", int),
        ("BROKER_SMTP_PORT", "SMTP_PORT", int),
        ("BROKER_SESSION_IDLE_MINUTES", "SESSION_IDLE_MINUTES", int),
        ("BROKER_APPEAL_ANSWER_WORKING_DAYS", "APPEAL_ANSWER_WORKING_DAYS", int),
    ):
        if name in env:
            try:
                settings[key] = kind(env[name])
            except ValueError:
                raise ConfigurationError(f"{name} must be a number") from None
    if "BROKER_SETTLEMENT_FOUR_EYES_ABOVE" in env:
        settings["SETTLEMENT_FOUR_EYES_ABOVE"] = _yuan("BROKER_SETTLEMENT_FOUR_EYES_ABOVE", env["BROKER_SETTLEMENT_FOUR_EYES_ABOVE"])
    if "BROKER_WEBHOOK_ALLOWED_HOSTS" in env:
        settings["WEBHOOK_ALLOWED_HOSTS"] = tuple(
            entry.strip() for entry in env["BROKER_WEBHOOK_ALLOWED_HOSTS"].split(",") if entry.strip()
        )
    check_settings(settings)
    return settings


def _oidc_settings_problem(settings: Mapping[str, object]) -> str | None:
    """Why the OpenID Connect settings can't be used, or None (also when sign-in through OIDC is off)."""
    url = settings.get("OIDC_DISCOVERY_URL")
    if not url:
        return None
    from broker.oidc import SignInRefused, check_provider_url

    try:
        check_provider_url(str(url), production=settings.get("BROKER_ENV") == "production",
                           what="BROKER_OIDC_DISCOVERY_URL")
    except SignInRefused as error:
        return error.message
    missing = [name for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET") if not settings.get(name)]
    if missing:
        return "BROKER_OIDC_DISCOVERY_URL is set, so " + " and ".join(f"BROKER_{name}" for name in missing) + " must be too."
    return None


def check_settings(settings: Mapping[str, object]) -> None:
    """Refuse to run production on development defaults, naming every missing setting."""
    from broker.netguard import DestinationGuard
    from broker.storage import store_settings_problems

    try:
        DestinationGuard.parse(settings.get("WEBHOOK_ALLOWED_HOSTS") or ())  # type: ignore[arg-type]
    except ValueError as error:
        raise ConfigurationError(f"BROKER_WEBHOOK_ALLOWED_HOSTS: {error}") from None
    oidc_problem = _oidc_settings_problem(settings)
    if oidc_problem:
        raise ConfigurationError(oidc_problem)
    evidence_problems = store_settings_problems(settings)
    if evidence_problems:
        raise ConfigurationError("The evidence store can't be used: " + "; ".join(evidence_problems) + ".")
    idle = settings.get("SESSION_IDLE_MINUTES", 30)
    if not isinstance(idle, int) or isinstance(idle, bool) or idle < 1:
        raise ConfigurationError("BROKER_SESSION_IDLE_MINUTES must be a whole number of minutes, at least 1")
    answer_days = settings.get("APPEAL_ANSWER_WORKING_DAYS", 5)
    if not isinstance(answer_days, int) or isinstance(answer_days, bool) or not 1 <= answer_days <= 60:
        raise ConfigurationError("BROKER_APPEAL_ANSWER_WORKING_DAYS must be a whole number of working days, 1 to 60")
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
