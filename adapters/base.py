"""The carrier adapter interface and the plain data it exchanges with the broker.

An adapter speaks one carrier's API, units and field names, and hands the broker records
already normalised to the kinds and units of `broker.resources`. Nothing here knows about
Flask or the database: the sync service consumes a `FetchResult`, the webhook view calls
`parse_webhook`, the provisioning service calls `provision` / `release`.
"""

from __future__ import annotations

import abc
import enum
import logging
import os
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Mapping
from urllib.parse import urlsplit

from broker.inputs import text_problem
from broker.resources import (
    KINDS,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    QUANTITY_PLACES,
    UNIT_PRICE_PLACES,
    attribute_problem,
)

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


class Feature(enum.StrEnum):
    """What an adapter can do; an adapter lists the ones it can't in `unsupported_features`."""

    FETCH_OFFERS = "fetch_offers"
    PROVISION = "provision"
    RELEASE = "release"
    USAGE = "usage"
    WEBHOOK = "webhook"
    CATALOG_UPLOAD = "catalog_upload"


# ---------------------------------------------------------------------------------- errors


class AdapterError(Exception):
    """A carrier call failed; `message` is the carrier's own explanation where it gave one.

    `carrier_fault` is True when the carrier (or the network to it) is unwell — timeouts,
    refused connections, 5xx, 429, unreadable bodies — and counts towards its circuit breaker.
    A 4xx answer to a bad request is our fault, not the carrier's, and does not.
    """

    def __init__(
        self,
        message: str,
        *,
        carrier: str = "",
        status: int | None = None,
        carrier_fault: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.carrier = carrier
        self.status = status
        self.carrier_fault = carrier_fault

    def __str__(self) -> str:
        prefix = f"{self.carrier}: " if self.carrier else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{prefix}{self.message}{status}"


class CircuitOpenError(AdapterError):
    """The carrier failed repeatedly; calls fail fast until its breaker's reset timeout passes."""


class UnsupportedFeatureError(AdapterError):
    """The adapter declared this feature in `unsupported_features`."""


class WebhookSignatureError(AdapterError):
    """A pushed webhook had a missing, wrong or stale signature: answer 401, process nothing."""


class ConfigurationError(AdapterError):
    """The adapter's configuration is incomplete, e.g. a credential variable is not set."""


class CatalogLimitError(AdapterError):
    """A catalog file over one of the upload limits; `setting` is the variable that sets it.

    `too_large` is True for a size limit (answered 413), False for the row limit (422).
    """

    def __init__(self, message: str, *, setting: str, too_large: bool, carrier: str = "") -> None:
        super().__init__(message, carrier=carrier)
        self.setting = setting
        self.too_large = too_large


class RecordError(ValueError):
    """One carrier record can't be turned into an offer; the message is the quarantine reason."""


# ---------------------------------------------------------------------------------- config


class Secret:
    """A credential that never shows itself in a repr, a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class CarrierConfig:
    """How to reach one carrier. Credentials are named by environment variable, never inlined.

    `credentials` maps the adapter's credential names (see `CarrierAdapter.credential_names`)
    to environment-variable names, e.g. {"token": "BROKER_CTC_TOKEN"}.
    """

    base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    connect_timeout: float = 3.05
    read_timeout: float = 30.0
    retries: int = 3
    backoff_factor: float = 0.5
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 60.0
    page_size: int = 500
    # Carrier-specific knobs (e.g. unicom's catalog "format"); each adapter documents its own.
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}.")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("Timeouts must be positive.")
        if self.retries < 0 or self.breaker_fail_max < 1 or self.page_size < 1:
            raise ValueError("retries must be >= 0, breaker_fail_max and page_size >= 1.")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CarrierConfig:
        """Build a config from plain settings (a carrier row's JSON, a settings file)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown carrier settings: {', '.join(unknown)}; valid: {', '.join(sorted(known))}."
            )
        return cls(**data)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


# ---------------------------------------------------------------------------------- records


_QUANTA = {places: Decimal(1).scaleb(-places) for places in {QUANTITY_PLACES, UNIT_PRICE_PLACES}}


def _places_ok(value: Decimal, places: int) -> bool:
    quantum = _QUANTA.get(places) or Decimal(1).scaleb(-places)
    return value == value.quantize(quantum)


@dataclass(frozen=True)
class OfferRecord:
    """One capacity lot, normalised to the broker's kind, units and attribute names.

    `quantity` is in the kind's unit (resources.KINDS[kind].unit), prices are yuan per that
    unit. The window runs from `window_start` to `window_end`, both days included (as in the
    design's examples: a December lot is 2026-12-01 .. 2026-12-31). Constructing one validates
    it, so every OfferRecord in existence is well-formed; a problem raises RecordError.
    """

    external_id: str
    kind: str
    region: str
    attributes: Mapping[str, str | int]
    quantity: Decimal
    window_start: date
    window_end: date
    list_price: Decimal
    unit_price: Decimal
    divisible: bool | None = None  # None: the kind's default (False for data_line)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise RecordError(problem)
        if self.divisible is None:
            object.__setattr__(self, "divisible", KINDS[self.kind].divisible)
        object.__setattr__(self, "attributes", dict(self.attributes))

    def _problem(self) -> str | None:
        if not isinstance(self.external_id, str) or not self.external_id.strip():
            return "missing external id"
        if len(self.external_id) > 200:
            return "external id longer than 200 characters"
        if text_problem(self.external_id):
            return f"external id: {text_problem(self.external_id)}"
        if self.kind not in KINDS:
            return f"unknown kind {self.kind!r}; valid kinds: {', '.join(KINDS)}"
        if not isinstance(self.region, str) or not self.region.strip():
            return "missing region"
        if text_problem(self.region):
            return f"region: {text_problem(self.region)}"
        for name, value in self.attributes.items():
            problem = attribute_problem(self.kind, name, value)
            if problem:
                return f"attribute {name!r}: {problem}"
        for name, value, places, upper in (
            ("quantity", self.quantity, QUANTITY_PLACES, MAX_QUANTITY),
            ("list_price", self.list_price, UNIT_PRICE_PLACES, MAX_UNIT_PRICE),
            ("unit_price", self.unit_price, UNIT_PRICE_PLACES, MAX_UNIT_PRICE),
        ):
            if not isinstance(value, Decimal) or not value.is_finite():
                return f"{name} must be a finite Decimal"
            if not _places_ok(value, places):
                return f"{name} {value} has more than {places} decimal places"
            if value < 0 or value > upper:
                return f"{name} {value} is outside 0..{upper}"
        if self.quantity == 0:
            return "quantity is zero"
        if self.unit_price > self.list_price:
            return f"startup price {self.unit_price} is above list price {self.list_price}"
        if not (isinstance(self.window_start, date) and isinstance(self.window_end, date)):
            return "window dates missing"
        if not self.window_start < self.window_end:
            return f"window start {self.window_start} is not before end {self.window_end}"
        if self.divisible and not KINDS[self.kind].divisible:
            return f"kind {self.kind!r} is indivisible but the offer is marked divisible"
        return None


@dataclass(frozen=True)
class UploadLimits:
    """How large an uploaded catalog file may be, checked before any of it is parsed."""

    max_uncompressed_bytes: int = 20 * 1024 * 1024  # an XLSX's members, as its zip directory declares them
    max_compression_ratio: float = 100.0  # real spreadsheets pack about 5-20:1, zip bombs 1000:1
    max_rows: int = 10_000  # non-blank data rows; more refuses the file whole

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> UploadLimits:
        return cls(
            int(settings["UPLOAD_MAX_UNCOMPRESSED_BYTES"]),
            float(settings["UPLOAD_MAX_COMPRESSION_RATIO"]),
            int(settings["UPLOAD_MAX_ROWS"]),
        )


@dataclass(frozen=True)
class RejectedRecord:
    """A record quarantined instead of imported: what we know of it, as sent, and why."""

    external_id: str | None
    raw: Any  # JSON-safe: the carrier's record as sent (a dict, a CSV row, a text fragment)
    reason: str
    location: str = ""  # where in the feed: "page 3 item 7", "row 12"


@dataclass(frozen=True)
class PushIdentity:
    """A verified push, named so that the same push sent again is refused (a replay).

    `id` is the carrier's own id for the push where it sends one, else a digest of what the
    signature covers (the timestamp as a number, and the body), so the same push with its headers
    written differently is still the same push. `valid_until` is when its signature stops
    verifying: after that a replay is refused as stale, and the broker forgets the push.
    """

    id: str
    signed_at: datetime
    valid_until: datetime


@dataclass
class FetchResult:
    """What one fetch, upload or push yielded: good offers and quarantined records.

    `complete` is True when the result is the carrier's whole current catalogue (a full fetch
    or catalog upload): only then may offers missing from it be withdrawn. A webhook push is a
    delta and has complete=False, and carries its `push` identity.
    """

    carrier: str
    offers: list[OfferRecord] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    complete: bool = True
    push: PushIdentity | None = None
    encoding: str | None = None  # a CSV file's: utf-8, utf-8-sig (with Excel's byte-order mark) or gb18030

    @property
    def seen_external_ids(self) -> set[str]:
        """Ids present in the feed, readable or not: a malformed record is not a withdrawal."""
        ids = {o.external_id for o in self.offers}
        ids.update(r.external_id for r in self.rejected if r.external_id)
        return ids


@dataclass(frozen=True)
class ProvisionRequest:
    """Ask the carrier to set up one approved allocation; `allocation_id` is the idempotency key."""

    allocation_id: str
    offer_external_id: str
    kind: str
    quantity: Decimal  # broker units
    window_start: date
    window_end: date


# A carrier field whose name says this is never stored, whatever an adapter maps: a secret is got
# from the carrier's console, and the page says so.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential", "密码", "密钥", "口令")


@dataclass(frozen=True)
class AccessDetails:
    """How the startup's people reach what the carrier set up, as the carrier said: display-safe only.

    Every field is optional plain text shown on the startup's allocation page; `endpoint` and
    `console_url` are http(s) URLs. Never a password, an API key or any other secret: when the
    carrier's answer carried one, it is not kept and `secret_at_carrier` is True, so the page
    tells the startup to get it from the carrier's console.
    """

    endpoint: str | None = None  # an API base URL (tokens, object storage)
    console_url: str | None = None  # the carrier's console for this order
    region: str | None = None
    model: str | None = None  # a token quota's model name, as the API expects it
    host: str | None = None  # where to log in (an SSH host, a server's address)
    username: str | None = None  # the account or user name to log in as
    circuit_id: str | None = None  # a line's circuit number
    handover_point: str | None = None  # where a line is handed over (room, rack, port)
    instructions: str | None = None  # the carrier's own words on how to use it
    secret_at_carrier: bool = False

    URLS: ClassVar[frozenset[str]] = frozenset({"endpoint", "console_url"})
    MAX_URL: ClassVar[int] = 300
    MAX_TEXT: ClassVar[int] = 200
    MAX_INSTRUCTIONS: ClassVar[int] = 500

    @classmethod
    def from_carrier(cls, raw: Any, names: Mapping[str, str], *, carrier: str) -> AccessDetails | None:
        """The details in a carrier's answer, its field names mapped by `names` to ours.

        What can't be shown safely is logged (the field and why, never its value) and left out,
        and never fails the provisioning it came with: a field not in `names`, a secret, text
        that is too long or not printable, a URL that is not http(s). None when nothing is left.
        """
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            log.warning("%s: access details dropped: not an object", carrier)
            return None
        kept: dict[str, str] = {}
        secret = False
        for key, value in raw.items():
            name = names.get(key) if isinstance(key, str) else None
            if name is None or name == "secret_at_carrier":
                if isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS):
                    secret = True  # not kept; the page sends the startup to the carrier's console
                else:
                    log.info("%s: access detail %r dropped: not a field the broker keeps", carrier, str(key)[:40])
                continue
            problem = cls.problem(name, value)
            if problem:
                log.warning("%s: access detail %r (%s) dropped: %s", carrier, str(key)[:40], name, problem)
                continue
            kept[name] = value.strip()
        if not kept and not secret:
            return None
        return cls(**kept, secret_at_carrier=secret)

    @classmethod
    def problem(cls, name: str, value: Any) -> str | None:
        """Why `value` can't be shown as the detail `name`, or None."""
        if not isinstance(value, str) or not value.strip():
            return "not a non-empty text"
        value = value.strip()
        limit = cls.MAX_URL if name in cls.URLS else cls.MAX_INSTRUCTIONS if name == "instructions" else cls.MAX_TEXT
        if len(value) > limit:
            return f"longer than {limit} characters"
        if not value.isprintable():
            return "contains control characters"
        if name in cls.URLS:
            try:
                parts = urlsplit(value)
            except ValueError:
                return "not a URL"
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return "not an http(s) URL"
            if parts.username is not None or parts.password is not None:
                return "a URL with a user name or password in it"
        return None

    def stored(self) -> dict[str, Any]:
        """The details as kept on the allocation: the fields the carrier gave, nothing empty."""
        kept: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                                if f.name != "secret_at_carrier" and getattr(self, f.name) is not None}
        if self.secret_at_carrier:
            kept["secret_at_carrier"] = True
        return kept


@dataclass(frozen=True)
class Provisioned:
    """The carrier's answer to a provisioning order: its own reference and state, and how to use it
    when the carrier said (`access`)."""

    carrier_reference: str
    status: str  # "active" or "pending"
    access: AccessDetails | None = None


@dataclass(frozen=True)
class UsageRecord:
    """Usage the carrier reports against one allocation, in broker units."""

    external_id: str  # the carrier's id for this usage line: dedupe on it
    allocation_id: str
    carrier_reference: str
    kind: str
    quantity: Decimal
    recorded_at: datetime  # timezone-aware

    def __post_init__(self) -> None:
        for name in ("external_id", "allocation_id", "carrier_reference"):
            value = getattr(self, name)
            problem = text_problem(value) if isinstance(value, str) else f"{name} is not text"
            if problem:
                raise RecordError(f"{name}: {problem}")


@dataclass
class UsageResult:
    """Usage lines since a time, with unreadable lines quarantined like offers."""

    carrier: str
    records: list[UsageRecord] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)


# ---------------------------------------------------------------------------------- interface


class CarrierAdapter(abc.ABC):
    """One carrier's API behind the broker's interface.

    Subclasses set `name`, the `credential_names` their config must supply, and the
    `unsupported_features` they lack; a method for an unsupported feature raises
    UnsupportedFeatureError. Constructed by the registry as `cls(config, session=...)`.
    """

    name: ClassVar[str]
    credential_names: ClassVar[tuple[str, ...]] = ()
    unsupported_features: ClassVar[frozenset[Feature]] = frozenset()
    # "module:callable" of this carrier's simulator app factory, for `broker simulate`.
    simulator: ClassVar[str | None] = None

    def __init__(
        self,
        config: CarrierConfig,
        session: requests.Session | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._secrets = self._read_credentials(config, os.environ if environ is None else environ)

    def _read_credentials(
        self, config: CarrierConfig, environ: Mapping[str, str]
    ) -> dict[str, Secret]:
        missing = [n for n in self.credential_names if n not in config.credentials]
        if missing:
            raise ConfigurationError(
                f"config.credentials lacks {', '.join(missing)}; "
                f"{self.name} needs: {', '.join(self.credential_names)}",
                carrier=self.name,
            )
        secrets = {}
        for credential in self.credential_names:
            variable = config.credentials[credential]
            value = environ.get(variable)
            if not value:
                raise ConfigurationError(
                    f"environment variable {variable} (credential {credential!r}) is not set",
                    carrier=self.name,
                )
            secrets[credential] = Secret(value)
        return secrets

    def supports(self, feature: Feature) -> bool:
        return feature not in self.unsupported_features

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.config.base_url}>"

    @abc.abstractmethod
    def fetch_offers(self) -> FetchResult:
        """Fetch the carrier's whole current catalogue."""

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """Order an allocation; calling again with the same allocation id never orders twice."""
        raise self._unsupported(Feature.PROVISION)

    def release(self, carrier_reference: str) -> None:
        """Release a provisioned allocation; releasing twice is harmless."""
        raise self._unsupported(Feature.RELEASE)

    def fetch_usage(self, since: datetime) -> UsageResult:
        """Fetch usage lines recorded at or after `since`."""
        raise self._unsupported(Feature.USAGE)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, secret: str | bytes, now: datetime
    ) -> FetchResult:
        """Verify a pushed webhook's signature and parse its offers, naming the push (result.push)."""
        raise self._unsupported(Feature.WEBHOOK)

    def parse_catalog(self, content: bytes, filename: str, limits: UploadLimits | None = None) -> FetchResult:
        """Parse an uploaded catalog file (CSV or XLSX, by file name); CatalogLimitError if over `limits`."""
        raise self._unsupported(Feature.CATALOG_UPLOAD)

    def catalog_template(self) -> list[list[str]]:
        """A blank catalog file's rows for `parse_catalog`: the header, then one example row."""
        raise self._unsupported(Feature.CATALOG_UPLOAD)

    def _unsupported(self, feature: Feature) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(
            f"adapter {self.name!r} does not support {feature.value}", carrier=self.name
        )
