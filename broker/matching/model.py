"""The matching engine's plain data: what goes into a cycle and what comes out of it.

Quantities and prices are floats here; the database layer converts its Decimals on the way in
and the engine rounds its answer to the stored scale on the way out (see `rounding`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping

from broker.resources import KINDS

# Why a request was left short of what it asked. Listed from "nothing could ever serve it"
# to "who holds the capacity it lacked": the explainer reports the first one that applies.
NO_COMPATIBLE_OFFER = "no_compatible_offer"
REGION = "region"
WINDOW = "window"
PRICE_CEILING = "price_ceiling"
BELOW_MINIMUM = "below_minimum"
SHARE_CAP = "share_cap"
BUDGET = "budget"
CAPACITY_TAKEN = "capacity_taken"
CAPACITY_HELD = "capacity_held"
CAPACITY_SHORT = "capacity_short"
REASONS: tuple[str, ...] = (
    NO_COMPATIBLE_OFFER,
    REGION,
    WINDOW,
    PRICE_CEILING,
    BELOW_MINIMUM,
    SHARE_CAP,
    BUDGET,
    CAPACITY_TAKEN,
    CAPACITY_HELD,
    CAPACITY_SHORT,
)

Window = tuple[date, date]


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _as_window(value: Any) -> Window:
    start, end = value
    return (_as_date(start), _as_date(end))


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


@dataclass(frozen=True)
class Policy:
    # The largest fraction of a kind's supply (Σ available of its offers) one startup may take
    # in one cycle; None means no cap.
    share_cap: float | None = None


@dataclass(frozen=True)
class Startup:
    id: str
    budget: float | None = None  # the most it may spend this cycle; None means no limit
    # What this startup pays per unit of these offers (offer id -> price) where that is not
    # the offer's `unit_price`: the price after the subsidy it would get. Its budget and its
    # requests' price ceilings are checked on these prices. Empty: every offer at its price.
    prices: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", dict(self.prices))

    def price_of(self, offer: Offer) -> float:
        """What this startup pays per unit of `offer`."""
        return self.prices.get(offer.id, offer.unit_price)


@dataclass(frozen=True)
class Offer:
    id: str
    carrier: str
    kind: str
    region: str
    available: float
    # What a startup pays per unit after the carrier's discount, gross of subsidy; a startup
    # that would get a subsidy on it pays its own price instead (`Startup.prices`).
    unit_price: float
    window: Window
    attributes: Mapping[str, str | int] = field(default_factory=dict)
    divisible: bool = True
    # Capacity already promised outside this instance (earlier cycles' proposals, approved
    # grants): never allocated here, only counted to explain who holds what a request lacked.
    # An offer may have nothing `available` and still be listed for that.
    held: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _as_window(self.window))
        object.__setattr__(self, "attributes", dict(self.attributes))
        # A kind that is indivisible by nature (a data line) stays so whatever the feed says.
        kind = KINDS.get(self.kind)
        if kind is not None and not kind.divisible:
            object.__setattr__(self, "divisible", False)


@dataclass(frozen=True)
class Request:
    id: str
    startup: str
    kind: str
    quantity: float
    window: Window
    submitted_at: datetime
    min_quantity: float | None = None
    regions: tuple[str, ...] | None = None  # None: any region
    attributes: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    max_unit_price: float | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _as_window(self.window))
        object.__setattr__(self, "submitted_at", _as_datetime(self.submitted_at))
        if self.regions is not None:
            object.__setattr__(self, "regions", tuple(self.regions))
        object.__setattr__(
            self,
            "attributes",
            {
                name: tuple(values) if isinstance(values, (list, tuple)) else (values,)
                for name, values in self.attributes.items()
            },
        )


@dataclass(frozen=True)
class Instance:
    policy: Policy
    startups: tuple[Startup, ...]
    offers: tuple[Offer, ...]
    requests: tuple[Request, ...]

    def __post_init__(self) -> None:
        # Everything downstream relies on id order, never on the order the caller gave.
        object.__setattr__(self, "startups", tuple(sorted(self.startups, key=lambda s: s.id)))
        object.__setattr__(self, "offers", tuple(sorted(self.offers, key=lambda o: o.id)))
        object.__setattr__(self, "requests", tuple(sorted(self.requests, key=lambda r: r.id)))


@dataclass(frozen=True)
class Allocation:
    request: str
    offer: str
    quantity: float


@dataclass(frozen=True)
class Unfilled:
    request: str
    reason: str


@dataclass(frozen=True)
class Result:
    allocations: tuple[Allocation, ...]
    objective: float
    unfilled: tuple[Unfilled, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)


class InstanceError(ValueError):
    """A matching instance that breaks the format, located by the path of its first bad field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
