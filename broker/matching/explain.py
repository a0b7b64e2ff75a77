"""Why each request was left short: one reason code per request, from the final ledger."""

from __future__ import annotations

from .grants import EPS, Ledger
from .model import BELOW_MINIMUM, BUDGET, CAPACITY_TAKEN, SHARE_CAP, Unfilled


def reasons(ledger: Ledger) -> list[Unfilled]:
    """A reason for every request granted less than it asked, in request order."""
    problem = ledger.problem
    ids = [r.id for r in problem.instance.requests]
    out = []
    for r, granted in enumerate(ledger.granted):
        if ledger.qty[r] - granted <= EPS:
            continue
        reason = problem.no_pair_reason[r] or _contest_reason(ledger, r)
        out.append(Unfilled(request=ids[r], reason=reason))
    return out


def _contest_reason(ledger: Ledger, r: int) -> str:
    """Which limit stopped a request that had compatible offers.

    Checked in this order: the startup's share cap, its budget, then supply: if what the
    compatible offers ever had could not meet the request's minimum (or, on an indivisible
    lot, its whole quantity) the request was below the minimum; otherwise the capacity went to
    requests ranked higher.
    """
    q = ledger.qty[r]
    granted = ledger.granted[r]
    offers = ledger.offers_of(r)
    cap = ledger.problem.off_cap
    # What it still needs for its next grant: the whole line, its minimum, or any amount.
    if granted > 0:
        needed = EPS * 10
        whole_possible = False
    else:
        needed = max(ledger.min_qty[r], EPS * 10)
        whole_possible = any(
            not ledger.divisible[o] and cap[o] + EPS >= q for o in offers
        )
    divisible_supply = sum(cap[o] for o in offers if ledger.divisible[o])
    if granted == 0 and not whole_possible and divisible_supply + EPS < needed:
        return BELOW_MINIMUM

    least = q if granted == 0 and not any(ledger.divisible[o] for o in offers) else needed
    if ledger.group_left[ledger.group[r]] + EPS < least:
        return SHARE_CAP
    cheapest = min(
        (ledger.price[o] for o in offers if ledger.cap_left[o] > EPS), default=None
    )
    if cheapest is not None and ledger.budget_left[ledger.startup[r]] + EPS < least * cheapest:
        return BUDGET
    left_divisible = sum(ledger.cap_left[o] for o in offers if ledger.divisible[o])
    left_whole = any(not ledger.divisible[o] and ledger.cap_left[o] + EPS >= q for o in offers)
    if granted == 0 and not left_whole and EPS < left_divisible < needed:
        return BELOW_MINIMUM
    return CAPACITY_TAKEN
