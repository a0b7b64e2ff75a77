"""From the ledger's floats to the stored scale, checked exactly.

Split grants are floored to a thousandth of a unit (the database's scale), a whole grant is
the request's own quantity. The rounded answer is then checked in exact decimal arithmetic
on the very numbers that will be printed; any request that breaks a rule after rounding (in
practice: none, or LP round-off of a millionth) is taken back whole, which can only relax
every other limit.
"""

from __future__ import annotations

import math
from decimal import Decimal

from .grants import Ledger

_SCALE = 1000


def round_grants(ledger: Ledger) -> None:
    """Round every grant in place and take back whatever the exact check rejects."""
    for r, grants in enumerate(ledger.grants):
        if not grants:
            continue
        if ledger.whole[r]:
            continue
        rounded = {}
        for o, q in grants.items():
            value = _to_scale(q)
            if value > 0:
                rounded[o] = value
        total = sum(rounded.values())
        if not rounded or total + 1e-9 < ledger.min_qty[r]:
            ledger.revoke(r)
            continue
        ledger.revoke(r)
        ledger.commit(r, list(rounded.items()))
    for r in _exact_violators(ledger):
        ledger.revoke(r)


def _to_scale(q: float) -> float:
    # Snap LP round-off (99.9999999 is 100) but otherwise round down, never up past a limit.
    nearest = round(q * _SCALE)
    if abs(q * _SCALE - nearest) < 1e-4:
        return nearest / _SCALE
    return math.floor(q * _SCALE) / _SCALE


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


def _exact_violators(ledger: Ledger) -> list[int]:
    """Requests to take back so that every limit holds exactly; lowest value per unit first."""
    problem = ledger.problem
    instance = problem.instance
    value = problem.req_value
    taken: set[int] = set()
    while True:
        offender = _first_violation(ledger, instance, taken)
        if offender is None:
            return sorted(taken)
        holders = [r for r in offender if r not in taken]
        # Give back the request that earns least per unit; the id breaks ties.
        victim = min(holders, key=lambda r: (value[r], -r))
        taken.add(victim)


def _first_violation(ledger: Ledger, instance, taken: set[int]) -> list[int] | None:
    offers = instance.offers
    requests = instance.requests
    load: dict[int, Decimal] = {}
    holders: dict[int, list[int]] = {}
    for r, grants in enumerate(ledger.grants):
        if r in taken:
            continue
        total = Decimal(0)
        for o, q in grants.items():
            load[o] = load.get(o, Decimal(0)) + _dec(q)
            holders.setdefault(o, []).append(r)
            total += _dec(q)
        request = requests[r]
        if grants and (
            total > _dec(request.quantity)
            or (request.min_quantity is not None and total < _dec(request.min_quantity))
        ):
            return [r]
    for o in sorted(load):
        if load[o] > _dec(offers[o].available):
            return holders[o]

    share_cap = instance.policy.share_cap
    supply: dict[str, Decimal] = {}
    for offer in offers:
        supply[offer.kind] = supply.get(offer.kind, Decimal(0)) + _dec(offer.available)
    per_group: dict[tuple[str, str], Decimal] = {}
    group_holders: dict[tuple[str, str], list[int]] = {}
    spend: dict[str, Decimal] = {}
    spend_holders: dict[str, list[int]] = {}
    for r, grants in enumerate(ledger.grants):
        if r in taken or not grants:
            continue
        request = requests[r]
        key = (request.startup, request.kind)
        for o, q in grants.items():
            per_group[key] = per_group.get(key, Decimal(0)) + _dec(q)
            spend[request.startup] = spend.get(request.startup, Decimal(0)) + _dec(q) * _dec(
                offers[o].unit_price
            )
        group_holders.setdefault(key, []).append(r)
        spend_holders.setdefault(request.startup, []).append(r)
    if share_cap is not None:
        for key in sorted(per_group):
            if per_group[key] > _dec(share_cap) * supply[key[1]]:
                return group_holders[key]
    budgets = {s.id: s.budget for s in instance.startups}
    for startup in sorted(spend):
        budget = budgets[startup]
        if budget is not None and spend[startup] > _dec(budget):
            return spend_holders[startup]
    return None
