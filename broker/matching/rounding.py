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

import numpy as np

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
        if rounded and total + 1e-9 < ledger.min_qty[r]:
            rounded = _lift_to_minimum(ledger, r, rounded)
            total = sum(rounded.values())
        if not rounded or total + 1e-9 < ledger.min_qty[r]:
            ledger.revoke(r)
            continue
        if rounded == grants:  # already on the scale
            continue
        ledger.revoke(r)
        ledger.commit(r, list(rounded.items()))
    for r in _exact_violators(ledger):
        ledger.revoke(r)


def _lift_to_minimum(ledger: Ledger, r: int, rounded: dict[int, float]) -> dict[int, float]:
    """Floored grants of request r that together fell below its minimum (a grant of exactly
    the minimum split over offers, say 772.9470851 + 122.9529149 = 895.9): raise some of them
    to the next thousandth instead, cheapest offers first, where the offer, the share cap and
    the budget have room for the difference. Returns the grants unchanged if that can't reach
    the minimum (the request is then taken back, as before)."""
    grants = ledger.grants[r]
    lifted = dict(rounded)
    total = sum(lifted.values())
    price = ledger.prices_of(r)
    for o in sorted(lifted, key=lambda o: (price[o], o)):
        if total + 1e-9 >= ledger.min_qty[r]:
            break
        up = (round(lifted[o] * _SCALE) + 1) / _SCALE
        # The ledger's room already counts the unrounded grant: only the excess over it needs
        # room, kept a hair clear of the limit so the exact check will agree.
        if ledger.cap_left[o] - (up - grants[o]) < 1e-9:
            continue
        lifted[o] = up
        total += 1 / _SCALE
    if total + 1e-9 < ledger.min_qty[r]:
        return rounded
    # What the flooring saved elsewhere pays for the lifts, in units and in money.
    extra_units = sum(q - grants[o] for o, q in lifted.items())
    extra_spend = sum((q - grants[o]) * price[o] for o, q in lifted.items())
    # (Sums within 1e-9 of zero are round-off; the exact check that follows settles them.)
    if (extra_units > 1e-9 and ledger.group_left[ledger.group[r]] - extra_units < 1e-9) or (
        extra_spend > 1e-9 and ledger.budget_left[ledger.startup[r]] - extra_spend < 1e-9
    ):
        return rounded
    return lifted


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
    """The holders of the first limit the printed numbers break, or None.

    Every limit is first summed in floats; only limits within a hair of binding (where
    round-off could matter) are then summed again in exact decimals. A float sum more than
    1e-9 (relative) below its limit cannot be above it exactly: its round-off is ~1e-13.
    """
    offers = instance.offers
    requests = instance.requests
    problem = ledger.problem
    rows = [(r, o, q) for r, grants in enumerate(ledger.grants) if r not in taken
            for o, q in grants.items()]
    if not rows:
        return None
    req = np.array([x[0] for x in rows], dtype=np.int64)
    off = np.array([x[1] for x in rows], dtype=np.int64)
    qty = np.array([x[2] for x in rows], dtype=float)

    def near(total: np.ndarray, limit: np.ndarray) -> np.ndarray:
        finite = np.isfinite(limit)
        slack = np.where(finite, limit, 0.0) - 1e-9 * np.maximum(1.0, np.abs(np.where(finite, limit, 0.0)))
        return np.flatnonzero(finite & (total > slack))

    # requests: total ≤ quantity and ≥ minimum (when granted)
    total = np.bincount(req, weights=qty, minlength=problem.n_requests)
    granted = np.bincount(req, minlength=problem.n_requests) > 0
    suspect = set(near(total, problem.req_qty).tolist())
    low = granted & (problem.req_min > 0) & (
        total < problem.req_min + 1e-9 * np.maximum(1.0, problem.req_min))
    suspect |= set(np.flatnonzero(low).tolist())
    for r in sorted(suspect):
        if not granted[r]:
            continue
        exact = sum((_dec(q) for q in ledger.grants[r].values()), Decimal(0))
        request = requests[r]
        if exact > _dec(request.quantity) or (
            request.min_quantity is not None and exact < _dec(request.min_quantity)
        ):
            return [r]

    load = np.bincount(off, weights=qty, minlength=problem.n_offers)
    for o in near(load, problem.off_cap).tolist():
        holders = sorted(set(req[off == o].tolist()))
        exact = sum((_dec(ledger.grants[r][o]) for r in holders), Decimal(0))
        if exact > _dec(offers[o].available):
            return holders

    share_cap = instance.policy.share_cap
    if share_cap is not None:
        group_load = np.bincount(problem.req_group[req], weights=qty,
                                 minlength=len(problem.group_cap))
        near_groups = near(group_load, problem.group_cap)
        if len(near_groups):
            supply: dict[str, Decimal] = {}
            for offer in offers:
                supply[offer.kind] = supply.get(offer.kind, Decimal(0)) + _dec(offer.available)
            # groups in (startup id, kind) order, as before
            keyed = []
            for g in near_groups.tolist():
                holders = sorted(set(req[problem.req_group[req] == g].tolist()))
                if not holders:
                    continue
                first = requests[holders[0]]
                keyed.append(((first.startup, first.kind), holders))
            for (startup, kind), holders in sorted(keyed):
                exact = sum((_dec(q) for r in holders for q in ledger.grants[r].values()),
                            Decimal(0))
                if exact > _dec(share_cap) * supply[kind]:
                    return holders

    spend = np.bincount(problem.req_startup[req], weights=qty * problem.pair_price[problem.pair_index(req, off)],
                        minlength=len(problem.startup_budget))
    keyed = []
    for s in near(spend, problem.startup_budget).tolist():
        holders = sorted(set(req[problem.req_startup[req] == s].tolist()))
        keyed.append((instance.startups[s].id, s, holders))
    for _, s, holders in sorted(keyed):
        startup = instance.startups[s]
        exact = sum(
            (_dec(q) * _dec(startup.price_of(offers[o])) for r in holders
             for o, q in ledger.grants[r].items()),
            Decimal(0),
        )
        if startup.budget is not None and exact > _dec(startup.budget):
            return holders
    return None
