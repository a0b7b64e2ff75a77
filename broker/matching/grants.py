"""Integer-feasible grants: the ledger every answer is built in, and the greedy steps that fill it.

A `Ledger` holds what is left of every offer, share cap and budget, and only accepts a grant
that keeps every hard rule: within capacity, cap and budget; at least the minimum or nothing;
an indivisible offer serves one request whole and alone. Everything the engine returns —
the baseline greedy, the repaired LP answer — is built through it, so none can break a rule.
"""

from __future__ import annotations

import math

import numpy as np

from .problem import Problem

# Quantities below this are round-off, not grants (a thousandth of a unit is the stored scale).
EPS = 1e-7


class Ledger:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.cap_left: list[float] = problem.off_cap.tolist()
        self.group_left: list[float] = problem.group_cap.tolist()
        self.budget_left: list[float] = problem.startup_budget.tolist()
        self.qty: list[float] = problem.req_qty.tolist()
        self.min_qty: list[float] = problem.req_min.tolist()
        self.group: list[int] = problem.req_group.tolist()
        self.startup: list[int] = problem.req_startup.tolist()
        # What each offer costs per unit, and where a startup pays another price (its subsidy),
        # per request its own offer -> price table; None: the offers' prices (see `prices_of`).
        self.price: list[float] = problem.off_price.tolist()
        self.divisible: list[bool] = problem.off_divisible.tolist()
        self.ptr: list[int] = problem.req_ptr.tolist()
        self.pair_off: list[int] = problem.pair_off.tolist()
        self.own_price: list[dict[int, float] | None] = [None] * problem.n_requests
        if problem.discounted:
            for r in np.unique(problem.pair_req[problem.pair_price != problem.off_price[problem.pair_off]]).tolist():
                lo, hi = self.ptr[r], self.ptr[r + 1]
                self.own_price[r] = dict(zip(self.pair_off[lo:hi], problem.pair_price[lo:hi].tolist()))
        # whether request r has any indivisible compatible offer
        self.has_whole: list[bool] = (np.bincount(
            problem.pair_req[~problem.off_divisible[problem.pair_off]], minlength=problem.n_requests
        ) > 0).tolist()
        self.granted: list[float] = [0.0] * problem.n_requests
        self.whole: list[bool] = [False] * problem.n_requests
        # request -> {offer: quantity}; a dict per request keeps insertion (cheapest-first) order.
        self.grants: list[dict[int, float]] = [dict() for _ in range(problem.n_requests)]

    # -- reading -----------------------------------------------------------------------------

    def prices_of(self, r: int) -> list[float] | dict[int, float]:
        """What request r's startup pays per unit of each of its offers, indexed by offer."""
        return self.own_price[r] or self.price

    def offers_of(self, r: int) -> list[int]:
        """Compatible offers of request r, cheapest first."""
        return self.pair_off[self.ptr[r] : self.ptr[r + 1]]

    def objective(self) -> float:
        """Σ weight × granted / asked."""
        weight = self.problem.req_weight
        return float(sum(weight[r] * g / self.qty[r] for r, g in enumerate(self.granted) if g))

    def cost(self) -> float:
        """What the startups pay in total: the first tie-break among equal objectives."""
        return sum(q * self.prices_of(r)[o] for r, grants in enumerate(self.grants) for o, q in grants.items())

    def held(self) -> tuple[np.ndarray, np.ndarray]:
        """The pair indices every grant is on, and the quantity on each."""
        req = [r for r, grants in enumerate(self.grants) for _ in grants]
        if not req:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        off = [o for grants in self.grants for o in grants]
        qty = [q for grants in self.grants for q in grants.values()]
        return self.problem.pair_index(np.array(req), np.array(off)), np.array(qty)

    def split_count(self) -> int:
        """Allocations beyond one per served request: the second tie-break."""
        return sum(max(0, len(g) - 1) for g in self.grants)

    # -- writing -----------------------------------------------------------------------------

    def commit(self, r: int, plan: list[tuple[int, float]], whole: bool = False) -> None:
        s, g = self.startup[r], self.group[r]
        price = self.prices_of(r)
        for o, q in plan:
            self.cap_left[o] -= q
            self.group_left[g] -= q
            self.budget_left[s] -= q * price[o]
            self.grants[r][o] = self.grants[r].get(o, 0.0) + q
            self.granted[r] += q
        if whole:
            self.whole[r] = True

    def revoke(self, r: int) -> None:
        """Take back everything request r holds."""
        s, g = self.startup[r], self.group[r]
        price = self.prices_of(r)
        for o, q in self.grants[r].items():
            self.cap_left[o] += q
            self.group_left[g] += q
            self.budget_left[s] += q * price[o]
        self.grants[r] = {}
        self.granted[r] = 0.0
        self.whole[r] = False

    def grant_whole(self, r: int, o: int) -> bool:
        """Serve request r whole from indivisible offer o, if every rule allows it."""
        if self.granted[r] > 0:
            return False
        q = self.qty[r]
        if (
            self.cap_left[o] + EPS < q
            or self.group_left[self.group[r]] + EPS < q
            or self.budget_left[self.startup[r]] + EPS < q * self.prices_of(r)[o]
        ):
            return False
        self.commit(r, [(o, q)], whole=True)
        return True

    def grant_divisible(self, r: int, offers: list[tuple[int, float]]) -> float:
        """Take up to the given amounts from divisible offers, within every limit; all or nothing
        with respect to the minimum. Returns the amount granted."""
        if self.whole[r]:
            return 0.0
        s, g = self.startup[r], self.group[r]
        room = min(self.qty[r] - self.granted[r], self.group_left[g])
        budget = self.budget_left[s]
        plan = []
        total = 0.0
        prices = self.prices_of(r)
        for o, want in offers:
            if room - total <= EPS:
                break
            take = min(want, self.cap_left[o], room - total)
            price = prices[o]
            if price > 0:
                take = min(take, budget / price)
            if take <= EPS:
                continue
            plan.append((o, take))
            total += take
            budget -= take * price
        if total <= EPS or self.granted[r] + total + EPS < self.min_qty[r]:
            return 0.0
        self.commit(r, plan)
        return total

    def top_up(self, r: int) -> None:
        """Grant request r what it can still get: whole from one indivisible offer if that
        beats the divisible offers, else as much as the divisible offers give, cheapest first."""
        if self.whole[r] or self.qty[r] - self.granted[r] <= EPS:
            return
        offers = self.offers_of(r)
        cap_left, is_divisible, inf = self.cap_left, self.divisible, float("inf")
        # A generator: grant_divisible stops reading as soon as the request is served.
        divisible = ((o, inf) for o in offers if is_divisible[o] and cap_left[o] > EPS)
        if self.granted[r] > 0:
            self.grant_divisible(r, divisible)
            return
        if not self.has_whole[r]:  # only divisible offers: nothing to weigh
            self.grant_divisible(r, divisible)
            return
        whole_offer = None
        q = self.qty[r]
        price = self.prices_of(r)
        for o in offers:  # cheapest first, so the first that fits is the one to take
            if not self.divisible[o] and self.cap_left[o] + EPS >= q:
                if self.budget_left[self.startup[r]] + EPS >= q * price[o]:
                    whole_offer = o
                    break
        if whole_offer is None or self.group_left[self.group[r]] + EPS < q:
            self.grant_divisible(r, divisible)
            return
        # Both ways may be open: the divisible offers win only if they serve it whole too and
        # cost the startup strictly less (a single allocation wins ties: fewer splits).
        before = self.granted[r]
        got = self.grant_divisible(r, divisible)
        if got > 0:
            whole_cost = q * price[whole_offer]
            split_cost = sum(q_ * price[o] for o, q_ in self.grants[r].items())
            if before + got + EPS >= q and split_cost < whole_cost - EPS:
                return
            self.revoke(r)
        self.grant_whole(r, whole_offer)


# Room an offer must keep after a move, so that float round-off in `cap_left` can never let
# the exact sum of its grants pass its `available`.
_ROOM_MARGIN = 1e-6


def cheapen(ledger: Ledger, order: list[int]) -> None:
    """Move grants to cheaper compatible offers that still have room, request by request in
    this order: the startups pay less, and nothing else changes — every request keeps its
    total (so its minimum and fraction), every share cap its load, every budget only gains.
    Amounts moved are whole thousandths, the stored scale, so rounding can't undo a move."""
    cap_left, divisible = ledger.cap_left, ledger.divisible
    for r in order:
        grants = ledger.grants[r]
        if not grants:
            continue
        price = ledger.prices_of(r)
        s = ledger.startup[r]
        offers = ledger.offers_of(r)  # cheapest first
        if ledger.whole[r]:
            (o, q), = grants.items()
            for o2 in offers:
                if price[o2] >= price[o]:
                    break
                if not divisible[o2] and o2 != o and cap_left[o2] - _ROOM_MARGIN >= q:
                    cap_left[o] += q
                    cap_left[o2] -= q
                    ledger.budget_left[s] += q * (price[o] - price[o2])
                    ledger.grants[r] = {o2: q}
                    break
            continue
        for o in sorted(grants, key=lambda o: (-price[o], o)):
            for o2 in offers:
                if price[o2] >= price[o] or grants.get(o, 0.0) <= EPS:
                    break
                if not divisible[o2] or cap_left[o2] - _ROOM_MARGIN < 0.001:
                    continue
                move = math.floor(min(grants[o], cap_left[o2] - _ROOM_MARGIN) * 1000 + 1e-9) / 1000
                if move <= 0:
                    continue
                rest = grants[o] - move
                if rest < 0.001:  # all of it: take exactly what was there
                    move, rest = grants[o], 0.0
                cap_left[o] += move
                cap_left[o2] -= move
                ledger.budget_left[s] += move * (price[o] - price[o2])
                grants[o2] = grants.get(o2, 0.0) + move
                if rest > 0:
                    grants[o] = rest
                else:
                    del grants[o]


def fill(ledger: Ledger, order: list[int]) -> None:
    """Top up every request in this order."""
    for r in order:
        ledger.top_up(r)


def priority_order(problem: Problem) -> list[int]:
    """The queue as staff see it: highest weight first, then earliest submission."""
    return np.lexsort((problem.req_seniority, -problem.req_weight)).tolist()


def density_order(problem: Problem) -> list[int]:
    """Highest weight per unit asked first (what the objective pays), then earliest submission."""
    return np.lexsort((problem.req_seniority, -problem.req_value)).tolist()
