"""The quote across offers: what a startup would pay, before and after subsidy, on every active
offer a request it is thinking of could be served from, cheapest net first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker import matching
from broker.clock import local_date
from broker.matching.problem import build_problem
from broker.models import Account, Offer, OfferStatus, Role, Startup
from broker.resources import UNIT_PRICE_PLACES
from broker.services import subsidies
from broker.services.accounts import require_role


@dataclass
class OfferQuote(subsidies.Quote):
    """One compatible offer's quote (gross, subsidy, net, the programs), and its net unit price
    as the matching engine would see it (the best program's rate only)."""

    engine_unit_price: Decimal = Decimal(0)
    # The rate each program that would pay applies to this offer (program id -> share of the cost).
    rates: dict[int, Decimal] = field(default_factory=dict)


@dataclass
class RequestQuote:
    data: dict[str, Any]
    offers: list[OfferQuote]
    listed: Decimal  # Σ available of the kind's active offers whose window holds the request's
    listed_offers: int

    @property
    def compatible_available(self) -> Decimal:
        return sum((q.offer.available for q in self.offers), Decimal(0))


def quote_request(session: Session, actor: Account, data: dict[str, Any], now: dt.datetime) -> RequestQuote:
    """A startup: every active offer a request shaped like `data` could be served from, by the
    matching engine's own compatibility rules on the prices it would see (so a price ceiling is
    checked after subsidy), each with its quote; sorted by net price, then offer id. Nothing is
    reserved or written. The subsidy programs, declarations and use are read once for all offers."""
    require_role(actor, Role.startup)
    startup = actor.startup
    assert startup is not None
    offers, compatible, prices = _fitting(session, startup, data, now)
    starts_on = data["window_start"]
    found = subsidies.quotes(session, [(startup, o, data["quantity"], starts_on) for o in compatible], now)
    today = local_date(now)
    quotes = [
        OfferQuote(**vars(q), engine_unit_price=_unit_price(prices.get((startup.id, q.offer.id), q.offer.unit_price)),
                   rates={line.program.id: subsidies.rate_for(line.program, startup, q.offer, today)
                          for line in q.lines if line.reason is None})
        for q in found
    ]
    quotes.sort(key=lambda q: (q.net, q.offer.id))
    in_window = [o for o in offers if o.window_start <= data["window_start"] and o.window_end >= data["window_end"]]
    return RequestQuote(data, quotes, sum((o.available for o in in_window), Decimal(0)), len(in_window))


def compatible_offers(session: Session, startup: Startup, data: dict[str, Any], now: dt.datetime) -> list[Offer]:
    """The active offers the matching engine would pair with a request shaped like `data` of this
    startup (the quote's rule: kind, region, attributes, window, price ceiling after subsidy)."""
    return _fitting(session, startup, data, now)[1]


def _fitting(session: Session, startup: Startup, data: dict[str, Any],
             now: dt.datetime) -> tuple[list[Offer], list[Offer], dict[tuple[int, int], Decimal]]:
    """The kind's active offers not yet over, those compatible with `data`, and the startup's
    engine prices on them."""
    offers = list(session.scalars(
        sa.select(Offer).where(Offer.status == OfferStatus.active, Offer.kind == data["kind"],
                               Offer.window_end >= local_date(now))
        .options(selectinload(Offer.carrier)).order_by(Offer.id)
    ))
    prices = subsidies.engine_prices(session, [(startup, o, data["window_start"]) for o in offers], now)
    return offers, _compatible(startup.id, data, offers, prices, now), prices


def _unit_price(value: Decimal) -> Decimal:
    # Shown at the scale prices are stored in, rounded up: never below what the engine checks.
    return value.quantize(Decimal(1).scaleb(-UNIT_PRICE_PLACES), rounding=ROUND_CEILING)


def _compatible(startup_id: int, data: dict[str, Any], offers: list[Offer],
                prices: dict[tuple[int, int], Decimal], now: dt.datetime) -> list[Offer]:
    """The offers the engine would pair with the request (kind, region, attributes, window, price
    ceiling on the startup's own price): its `build_problem`, not a second copy of its rules.
    Capacity is left out of it: a quote is for any offer that fits, held or not."""
    if not offers:
        return []
    request = matching.Request(
        id="quote", startup="s", kind=data["kind"], quantity=float(data["quantity"]),
        window=(data["window_start"], data["window_end"]), submitted_at=now,
        regions=tuple(data["regions"]) if data.get("regions") else None,
        attributes={k: tuple(v) for k, v in data.get("attributes", {}).items()},
        max_unit_price=None if data.get("max_unit_price") is None else float(data["max_unit_price"]),
    )
    instance = matching.Instance(
        policy=matching.Policy(),
        startups=(matching.Startup(id="s", prices={
            f"o{o.id}": float(prices[startup_id, o.id]) for o in offers if (startup_id, o.id) in prices}),),
        offers=tuple(
            matching.Offer(id=f"o{o.id}", carrier=o.carrier.code, kind=o.kind, region=o.region,
                           available=max(float(o.quantity), 1.0), unit_price=float(o.unit_price),
                           window=(o.window_start, o.window_end), attributes=o.attributes, divisible=o.divisible)
            for o in offers
        ),
        requests=(request,),
    )
    problem = build_problem(instance)
    by_key = {f"o{o.id}": o for o in offers}
    return [by_key[instance.offers[i].id] for i in problem.pair_off.tolist()]
