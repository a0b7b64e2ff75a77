"""Small hand-made instances for the matching tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from broker.matching import Instance, Offer, Policy, Request, Startup

WINDOW = (date(2026, 12, 1), date(2026, 12, 31))
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def offer(id="o1", kind="gpu", available=100.0, unit_price=1.0, region="sh", carrier="ctc",
          attributes=None, window=WINDOW, divisible=True, held=0.0) -> Offer:
    return Offer(id=id, carrier=carrier, kind=kind, region=region, available=available,
                 unit_price=unit_price, window=window, attributes=attributes or {},
                 divisible=divisible, held=held)


def request(id="r1", startup="s1", kind="gpu", quantity=10.0, min_quantity=None, regions=None,
            attributes=None, max_unit_price=None, window=WINDOW, weight=1.0, minutes=0) -> Request:
    return Request(id=id, startup=startup, kind=kind, quantity=quantity, min_quantity=min_quantity,
                   regions=regions, attributes=attributes or {}, max_unit_price=max_unit_price,
                   window=window, weight=weight, submitted_at=T0 + timedelta(minutes=minutes))


def instance(offers, requests, startups=None, share_cap=None) -> Instance:
    if startups is None:
        startups = [Startup(id=s) for s in sorted({r.startup for r in requests})]
    return Instance(Policy(share_cap=share_cap), tuple(startups), tuple(offers), tuple(requests))
