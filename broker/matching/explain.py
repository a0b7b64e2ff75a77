"""Why each request was left short: one reason code per request, from the final ledger."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grants import EPS, Ledger
from .model import (
    BELOW_MINIMUM,
    BUDGET,
    CAPACITY_HELD,
    CAPACITY_SHORT,
    CAPACITY_TAKEN,
    SHARE_CAP,
    Unfilled,
)


def reasons(ledger: Ledger) -> list[Unfilled]:
    """A reason for every request granted less than it asked, in request order."""
    problem = ledger.problem
    ids = [r.id for r in problem.instance.requests]
    n = problem.n_requests
    # Per request, over its divisible compatible offers (those with nothing available too):
    # what they have in this instance, and what is held outside it.
    spent_req = np.repeat(np.arange(n), np.diff(problem.spent_ptr))
    req = np.concatenate([problem.pair_req, spent_req])
    off = np.concatenate([problem.pair_off, problem.spent_off])
    divisible = problem.off_divisible[off]
    split_cap = np.bincount(req[divisible], weights=problem.off_cap[off[divisible]], minlength=n)
    split_held = np.bincount(req[divisible], weights=problem.off_held[off[divisible]], minlength=n)
    totals = _Totals(
        cap=problem.off_cap.tolist(), held=problem.off_held.tolist(),
        split_cap=split_cap.tolist(), split_held=split_held.tolist(),
        spent_off=problem.spent_off.tolist(), spent_ptr=problem.spent_ptr.tolist(),
    )
    out = []
    for r, granted in enumerate(ledger.granted):
        if ledger.qty[r] - granted <= EPS:
            continue
        reason = problem.no_pair_reason[r] or _contest_reason(ledger, r, totals)
        out.append(Unfilled(request=ids[r], reason=reason))
    return out


@dataclass(frozen=True)
class _Totals:
    """Per offer and per request, as plain lists (read once per request left short)."""

    cap: list[float]  # per offer: available in this instance
    held: list[float]  # per offer: held outside it
    split_cap: list[float]  # per request: Σ cap over its divisible compatible offers
    split_held: list[float]  # per request: Σ held over them
    spent_off: list[int]  # per request, its compatible offers with nothing available:
    spent_ptr: list[int]  # spent_off[spent_ptr[r] : spent_ptr[r + 1]]


def _contest_reason(ledger: Ledger, r: int, totals: _Totals) -> str:
    """Which limit stopped a request that has compatible offers (with capacity available here
    or not).

    Checked in this order:
      - below_minimum: not even the compatible offers' whole capacity, what they have here
        plus what is held outside the instance, could meet its minimum (or hold an
        indivisible request whole);
      - share_cap, then budget: the startup's own limits, where the capacity is there;
      - then who holds the capacity its next grant needs: other requests of this instance
        (capacity_taken); else earlier cycles' proposals and grants (capacity_held); else
        nobody: it already has every unit there is (capacity_short).
    """
    q = ledger.qty[r]
    granted = ledger.granted[r]
    own = ledger.grants[r]
    divisible = ledger.divisible
    offers = ledger.offers_of(r)  # cheapest first
    spent = totals.spent_off[totals.spent_ptr[r] : totals.spent_ptr[r + 1]]

    # What its compatible offers have beyond its own grants: split over the divisible ones,
    # here (in this instance) and ever (with what is held outside it); and whether one
    # indivisible offer could hold it whole. The capacity is there wherever it fits.
    split_here = totals.split_cap[r] - sum(x for o, x in own.items() if divisible[o])
    split_ever = split_here + totals.split_held[r]
    whole_here = whole_ever = False
    if granted == 0 and (ledger.has_whole[r] or spent):
        cap, held = totals.cap, totals.held
        for o in offers + spent:
            if not divisible[o]:
                whole_here = whole_here or cap[o] + EPS >= q
                whole_ever = whole_ever or cap[o] + held[o] + EPS >= q

    def fits(split: float, whole: bool) -> bool:
        """Whether its next grant fits: after a first grant, any more from divisible offers;
        before, its minimum from divisible offers together, or all of it from one lot."""
        if granted > 0:
            return split > EPS * 10
        return whole or split + EPS >= max(ledger.min_qty[r], EPS * 10)

    fits_here = fits(split_here, whole_here)
    fits_ever = fits_here or fits(split_ever, whole_ever)
    if granted == 0 and not fits_ever:
        return BELOW_MINIMUM

    # Its next grant needs its minimum (or, with only indivisible offers, its whole quantity).
    if granted > 0:
        least = EPS * 10
    elif any(divisible[o] for o in offers + spent):
        least = max(ledger.min_qty[r], EPS * 10)
    else:
        least = q
    if fits_here:
        # The capacity was there: its startup's own limits first, then the contest. (Where
        # it was not, a cap or a budget that would also have stopped it is not the cause.)
        if ledger.group_left[ledger.group[r]] + EPS < least:
            return SHARE_CAP
        cap_left = ledger.cap_left
        price = ledger.prices_of(r)
        cheapest = next((price[o] for o in offers if cap_left[o] > EPS), None)
        if cheapest is not None and ledger.budget_left[ledger.startup[r]] + EPS < least * cheapest:
            return BUDGET
        return CAPACITY_TAKEN
    if fits_ever:
        return CAPACITY_HELD
    return CAPACITY_SHORT
