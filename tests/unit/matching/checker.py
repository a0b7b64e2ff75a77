"""An independent checker of matching answers, written from DESIGN.md's semantics alone.

It shares no code with the engine: it reads the instance's own dataclasses and the answer's
printed numbers, and does its sums in exact decimal arithmetic.
"""

from __future__ import annotations

from decimal import Decimal

from broker.matching import REASONS, Instance, Result

INDIVISIBLE_KINDS = {"data_line"}


def d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def compatible(request, offer, price: float | None = None) -> bool:
    """Whether `offer` may serve `request`, whose startup pays `price` per unit (default: the offer's)."""
    price = offer.unit_price if price is None else price
    if request.kind != offer.kind:
        return False
    if request.regions is not None and offer.region not in request.regions:
        return False
    for name, accepted in request.attributes.items():
        if name not in offer.attributes or offer.attributes[name] not in accepted:
            return False
    if not (offer.window[0] <= request.window[0] and offer.window[1] >= request.window[1]):
        return False
    if request.max_unit_price is not None and price > request.max_unit_price:
        return False
    return True


def violations(instance: Instance, result: Result) -> list[str]:
    """Every broken rule, as readable lines; empty when the answer is feasible."""
    problems: list[str] = []
    requests = {r.id: r for r in instance.requests}
    offers = {o.id: o for o in instance.offers}
    budgets = {s.id: s.budget for s in instance.startups}
    startups = {s.id: s for s in instance.startups}
    seen_pairs = set()
    per_request: dict[str, list] = {}
    for a in result.allocations:
        if a.request not in requests or a.offer not in offers:
            problems.append(f"unknown ids in {a}")
            continue
        if (a.request, a.offer) in seen_pairs:
            problems.append(f"duplicate allocation {a.request}/{a.offer}")
        seen_pairs.add((a.request, a.offer))
        if not a.quantity > 0:
            problems.append(f"non-positive quantity {a}")
        offer = offers[a.offer]
        if not compatible(requests[a.request], offer, startups[requests[a.request].startup].price_of(offer)):
            problems.append(f"incompatible pair {a.request}/{a.offer}")
        per_request.setdefault(a.request, []).append(a)

    load: dict[str, Decimal] = {}
    for a in result.allocations:
        load[a.offer] = load.get(a.offer, Decimal(0)) + d(a.quantity)
    for offer_id, used in load.items():
        if used > d(offers[offer_id].available):
            problems.append(f"offer {offer_id} over capacity: {used} > {offers[offer_id].available}")

    for request_id, allocations in per_request.items():
        request = requests[request_id]
        total = sum((d(a.quantity) for a in allocations), Decimal(0))
        if total > d(request.quantity):
            problems.append(f"request {request_id} over its quantity")
        if request.min_quantity is not None and total < d(request.min_quantity):
            problems.append(f"request {request_id} below its minimum")
        indivisible = [
            a for a in allocations
            if offers[a.offer].kind in INDIVISIBLE_KINDS or not offers[a.offer].divisible
        ]
        if indivisible and (len(allocations) != 1 or d(allocations[0].quantity) != d(request.quantity)):
            problems.append(f"request {request_id} splits or shorts an indivisible offer")

    supply: dict[str, Decimal] = {}
    for o in instance.offers:
        supply[o.kind] = supply.get(o.kind, Decimal(0)) + d(o.available)
    taken: dict[tuple[str, str], Decimal] = {}
    spent: dict[str, Decimal] = {}
    for a in result.allocations:
        request, offer = requests[a.request], offers[a.offer]
        key = (request.startup, request.kind)
        taken[key] = taken.get(key, Decimal(0)) + d(a.quantity)
        price = startups[request.startup].price_of(offer)  # what this startup pays: its own price, if any
        spent[request.startup] = spent.get(request.startup, Decimal(0)) + d(a.quantity) * d(price)
    cap = instance.policy.share_cap
    if cap is not None:
        for (startup, kind), amount in taken.items():
            if amount > d(cap) * supply[kind]:
                problems.append(f"startup {startup} over its share cap of {kind}")
    for startup, amount in spent.items():
        if budgets[startup] is not None and amount > d(budgets[startup]):
            problems.append(f"startup {startup} over budget: {amount} > {budgets[startup]}")

    granted = {
        rid: sum((d(a.quantity) for a in allocs), Decimal(0)) for rid, allocs in per_request.items()
    }
    objective = sum(
        (Decimal(repr(r.weight)) * granted.get(r.id, Decimal(0)) / d(r.quantity) for r in instance.requests),
        Decimal(0),
    )
    if abs(objective - d(result.objective)) > Decimal("1e-6") * max(Decimal(1), objective):
        problems.append(f"objective {result.objective} != recomputed {objective}")

    unfilled = {u.request: u.reason for u in result.unfilled}
    if len(unfilled) != len(result.unfilled):
        problems.append("a request is listed unfilled twice")
    for r in instance.requests:
        short = granted.get(r.id, Decimal(0)) < d(r.quantity)
        if short and r.id not in unfilled:
            problems.append(f"request {r.id} left short without a reason")
        if not short and r.id in unfilled:
            problems.append(f"request {r.id} fully served but listed unfilled")
        if r.id in unfilled and unfilled[r.id] not in REASONS:
            problems.append(f"request {r.id} has unknown reason {unfilled[r.id]}")
    return problems
