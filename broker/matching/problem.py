"""The instance as arrays, and every compatible (request, offer) pair.

The solver works on integer indices into id-sorted requests and offers, so that nothing it
does depends on the order the caller listed them in. Compatibility is checked per kind, one
block of requests against all offers of the kind at a time, with numpy.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from broker.resources import KIND_NAMES

from .model import NO_COMPATIBLE_OFFER, PRICE_CEILING, REGION, WINDOW, Instance

# Requests checked against a kind's offers at once: bounds the boolean matrices to a few MB.
_BLOCK_CELLS = 4_000_000


@dataclass
class Problem:
    instance: Instance
    # per request (id order)
    req_kind: np.ndarray  # int: index into KIND_NAMES
    req_startup: np.ndarray  # int: index into instance.startups
    req_group: np.ndarray  # int: index of the (startup, kind) pair the share cap applies to
    req_qty: np.ndarray
    req_min: np.ndarray  # 0 where any positive amount will do
    req_weight: np.ndarray
    req_value: np.ndarray  # weight / quantity: the objective's gain per unit granted
    req_seniority: np.ndarray  # 0 for the earliest submission, 1 for the next, …
    # per offer (id order)
    off_kind: np.ndarray
    off_cap: np.ndarray
    off_price: np.ndarray
    off_divisible: np.ndarray
    # per startup and per (startup, kind) group
    startup_budget: np.ndarray  # inf where there is no budget
    group_cap: np.ndarray  # share_cap × the kind's supply; inf where there is no cap
    # compatible pairs, grouped by request, each request's cheapest offer first
    pair_req: np.ndarray
    pair_off: np.ndarray
    req_ptr: np.ndarray  # pairs of request i are pair_*[req_ptr[i]:req_ptr[i + 1]]
    # why a request has no compatible offer at all (None where it has one, with capacity
    # available or not)
    no_pair_reason: list[str | None]
    # per pair: False where no feasible answer can ever use it (see `viable_pairs`)
    pair_viable: np.ndarray | None = None
    # per pair: what the request's startup pays per unit of the offer (its own price where it
    # has one, `Startup.prices`; else the offer's). None: the offers' prices.
    pair_price: np.ndarray | None = None
    # Only for the reasons, never in the LP or any answer: per offer, what is held outside
    # the instance (`Offer.held`), and per request its compatible offers with nothing
    # available, `spent_off[spent_ptr[i]:spent_ptr[i + 1]]`. None: nothing held, none spent.
    off_held: np.ndarray | None = None
    spent_off: np.ndarray | None = None
    spent_ptr: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.pair_price is None:
            self.pair_price = self.off_price[self.pair_off]
        if self.pair_viable is None:
            self.pair_viable = viable_pairs(self)
        if self.off_held is None:
            self.off_held = np.zeros(self.n_offers)
        if self.spent_ptr is None:
            self.spent_off = np.zeros(0, dtype=np.int64)
            self.spent_ptr = np.zeros(self.n_requests + 1, dtype=np.int64)

    @property
    def n_requests(self) -> int:
        return len(self.req_qty)

    @property
    def n_offers(self) -> int:
        return len(self.off_cap)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_req)

    @property
    def discounted(self) -> bool:
        """Whether some startup pays other than the offer's price on some pair."""
        return bool(np.any(self.pair_price != self.off_price[self.pair_off]))

    def pair_index(self, req: np.ndarray, off: np.ndarray) -> np.ndarray:
        """Indices of the given compatible (request, offer) pairs."""
        order, sorted_keys = self._pair_keys
        return order[np.searchsorted(sorted_keys, req * self.n_offers + off)]

    @functools.cached_property
    def _pair_keys(self) -> tuple[np.ndarray, np.ndarray]:
        keys = self.pair_req * self.n_offers + self.pair_off
        order = np.argsort(keys, kind="stable")
        return order, keys[order]


def build_problem(instance: Instance) -> Problem:
    """Index the instance and find every compatible pair."""
    requests, offers, startups = instance.requests, instance.offers, instance.startups
    kind_index = {name: i for i, name in enumerate(KIND_NAMES)}
    startup_index = {s.id: i for i, s in enumerate(startups)}

    req_kind = np.array([kind_index[r.kind] for r in requests], dtype=np.int64)
    req_startup = np.array([startup_index[r.startup] for r in requests], dtype=np.int64)
    group_keys = req_startup * len(KIND_NAMES) + req_kind
    group_ids, req_group = np.unique(group_keys, return_inverse=True)
    req_qty = np.array([r.quantity for r in requests], dtype=float)
    req_min = np.array([r.min_quantity or 0.0 for r in requests], dtype=float)
    req_weight = np.array([r.weight for r in requests], dtype=float)
    # Earlier submission wins ties; the id (the requests' own order) settles equal timestamps.
    # POSIX timestamps keep the order of aware datetimes exactly (a microsecond is far above
    # a double's spacing near today's timestamps), and compare ≈ 10× faster than datetimes.
    submitted = np.array([r.submitted_at.timestamp() for r in requests], dtype=float)
    by_submission = np.lexsort((np.arange(len(requests)), submitted))
    req_seniority = np.empty(len(requests), dtype=np.int64)
    req_seniority[by_submission] = np.arange(len(requests))

    off_kind = np.array([kind_index[o.kind] for o in offers], dtype=np.int64)
    off_cap = np.array([o.available for o in offers], dtype=float)
    off_price = np.array([o.unit_price for o in offers], dtype=float)
    off_divisible = np.array([o.divisible for o in offers], dtype=bool)

    startup_budget = np.array(
        [np.inf if s.budget is None else s.budget for s in startups], dtype=float
    )
    supply = np.bincount(off_kind, weights=off_cap, minlength=len(KIND_NAMES))
    share_cap = instance.policy.share_cap
    group_kind = group_ids % len(KIND_NAMES)
    group_cap = (
        np.full(len(group_ids), np.inf)
        if share_cap is None
        else share_cap * supply[group_kind]
    )

    own_price = _own_prices(instance)
    pair_req, pair_off, no_pair_reason = _compatible_pairs(instance, req_kind, off_kind, off_price, req_startup, own_price)
    # Offers with nothing available are tested like the others, so that a request they alone
    # would serve is told its capacity is held (not that no offer fits), but their pairs stay
    # out of the LP, the bound and every answer.
    spent = off_cap[pair_off] <= 0
    spent_off = spent_ptr = None
    if spent.any():
        spent_off = pair_off[spent]
        spent_ptr = np.searchsorted(pair_req[spent], np.arange(len(requests) + 1)).astype(np.int64)
        pair_req, pair_off = pair_req[~spent], pair_off[~spent]
    pair_price = _pair_prices(pair_req, pair_off, off_price, req_startup, own_price)
    req_ptr = np.searchsorted(pair_req, np.arange(len(requests) + 1)).astype(np.int64)
    return Problem(
        instance=instance,
        req_kind=req_kind,
        req_startup=req_startup,
        req_group=req_group.astype(np.int64),
        req_qty=req_qty,
        req_min=req_min,
        req_weight=req_weight,
        req_value=req_weight / req_qty,
        req_seniority=req_seniority,
        off_kind=off_kind,
        off_cap=off_cap,
        off_price=off_price,
        off_divisible=off_divisible,
        startup_budget=startup_budget,
        group_cap=group_cap,
        pair_req=pair_req,
        pair_off=pair_off,
        req_ptr=req_ptr,
        no_pair_reason=no_pair_reason,
        pair_price=pair_price,
        off_held=np.array([o.held for o in offers], dtype=float),
        spent_off=spent_off,
        spent_ptr=spent_ptr,
    )


@dataclass(frozen=True)
class OwnPrices:
    """The prices startups pay other than the offers' (`Startup.prices`), keyed startup index ×
    number of offers + offer index, sorted, so that any array of (startup, offer) looks up at once."""

    keys: np.ndarray
    prices: np.ndarray
    n_offers: int

    def __bool__(self) -> bool:
        return len(self.keys) > 0

    def lookup(self, startup: np.ndarray, offer: np.ndarray, default: np.ndarray) -> np.ndarray:
        """What `startup[i]` pays per unit of `offer[i]` (broadcast), else `default`."""
        if not self:
            return default
        keys = startup * self.n_offers + offer
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, self.prices[at], default)


def _own_prices(instance: Instance) -> OwnPrices:
    offer_index = {o.id: i for i, o in enumerate(instance.offers)}
    n = len(instance.offers)
    found = sorted(
        (s * n + offer_index[o], float(p))
        for s, startup in enumerate(instance.startups) for o, p in startup.prices.items()
        if o in offer_index and float(p) != instance.offers[offer_index[o]].unit_price
    )
    return OwnPrices(np.array([k for k, _ in found], dtype=np.int64), np.array([p for _, p in found], dtype=float), n)


def _pair_prices(pair_req: np.ndarray, pair_off: np.ndarray, off_price: np.ndarray, req_startup: np.ndarray,
                 own_price: OwnPrices) -> np.ndarray:
    return own_price.lookup(req_startup[pair_req], pair_off, off_price[pair_off])


def _compatible_pairs(
    instance: Instance, req_kind: np.ndarray, off_kind: np.ndarray, off_price: np.ndarray,
    req_startup: np.ndarray | None = None, own_price: OwnPrices | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    requests = instance.requests
    no_pair_reason: list[str | None] = [None] * len(requests)
    chunks_req: list[np.ndarray] = []
    chunks_off: list[np.ndarray] = []
    for kind in range(len(KIND_NAMES)):
        kind_requests = np.flatnonzero(req_kind == kind)
        kind_offers = np.flatnonzero(off_kind == kind)
        if len(kind_requests) == 0:
            continue
        if len(kind_offers) == 0:
            for r in kind_requests:
                no_pair_reason[r] = NO_COMPATIBLE_OFFER
            continue
        check = _KindCheck(instance, kind_offers, req_startup, own_price)
        block = max(1, _BLOCK_CELLS // len(kind_offers))
        for start in range(0, len(kind_requests), block):
            rows = kind_requests[start : start + block]
            r_idx, o_idx = check.pairs(rows, no_pair_reason)
            chunks_req.append(r_idx)
            chunks_off.append(o_idx)
    if not chunks_req:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, no_pair_reason
    pair_req = np.concatenate(chunks_req)
    pair_off = np.concatenate(chunks_off)
    # Each request's offers cheapest first (for its startup), offer id breaking ties: the
    # order every greedy step walks them in.
    price = off_price[pair_off] if not own_price else _pair_prices(pair_req, pair_off, off_price, req_startup, own_price)
    order = np.lexsort((pair_off, price, pair_req))
    return pair_req[order], pair_off[order], no_pair_reason


class _KindCheck:
    """The offers of one kind, coded as small integers so that requests can be tested in bulk."""

    def __init__(self, instance: Instance, kind_offers: np.ndarray, req_startup: np.ndarray | None = None,
                 own_price: OwnPrices | None = None) -> None:
        self.instance = instance
        self.offer_index = kind_offers
        self.req_startup = req_startup
        self.own = own_price
        offers = [instance.offers[o] for o in kind_offers]
        self.regions = sorted({o.region for o in offers})
        region_code = {name: i for i, name in enumerate(self.regions)}
        self.off_region = np.array([region_code[o.region] for o in offers], dtype=np.int64)
        # Offers (positions in `offer_index`) grouped by region.
        self.by_region = np.argsort(self.off_region, kind="stable")
        self.region_ptr = np.searchsorted(self.off_region[self.by_region],
                                          np.arange(len(self.regions) + 1))
        self.off_start = np.array([o.window[0].toordinal() for o in offers], dtype=np.int64)
        self.off_end = np.array([o.window[1].toordinal() for o in offers], dtype=np.int64)
        self.off_price = np.array([o.unit_price for o in offers], dtype=float)
        # Attribute values become codes 1…n per attribute; 0 is "the offer doesn't say".
        names = sorted({name for o in offers for name in o.attributes})
        self.values: dict[str, dict[object, int]] = {}
        self.off_values: dict[str, np.ndarray] = {}
        for name in names:
            distinct = sorted({o.attributes[name] for o in offers if name in o.attributes}, key=repr)
            codes = {value: i + 1 for i, value in enumerate(distinct)}
            self.values[name] = codes
            self.off_values[name] = np.array(
                [codes.get(o.attributes.get(name), 0) if name in o.attributes else 0 for o in offers],
                dtype=np.int64,
            )

    def pairs(
        self, rows: np.ndarray, no_pair_reason: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The compatible (request, offer) pairs of these requests, by the offers' regions: a
        request is only tested against the offers in the regions it accepts (at 100k × 10k,
        ≈ 30% of the cells of testing every offer of the kind)."""
        requests = [self.instance.requests[r] for r in rows]
        accept = self._attribute_accept(requests)
        region_accept = self._region_accept(requests)
        window = (np.array([r.window[0].toordinal() for r in requests], dtype=np.int64),
                  np.array([r.window[1].toordinal() for r in requests], dtype=np.int64))
        ceiling = np.array(
            [np.inf if r.max_unit_price is None else r.max_unit_price for r in requests]
        )
        found_req, found_off = [], []
        for g in range(len(self.regions)):
            offers = self.by_region[self.region_ptr[g] : self.region_ptr[g + 1]]
            takers = np.flatnonzero(region_accept[:, g])
            if len(offers) == 0 or len(takers) == 0:
                continue
            ok = self._attributes_ok(accept, takers, offers)
            ok &= self._window_ok(window, takers, offers)
            ok &= self._prices(rows, takers, offers) <= ceiling[takers][:, None]
            local_req, local_off = np.nonzero(ok)
            found_req.append(takers[local_req])
            found_off.append(offers[local_off])
        local_req = np.concatenate(found_req) if found_req else np.zeros(0, dtype=np.int64)
        local_off = np.concatenate(found_off) if found_off else np.zeros(0, dtype=np.int64)
        # The first test a request fails on every offer is its reason: the nearest miss. Only
        # the requests left without any pair need the stages one by one, on every offer.
        lost = np.flatnonzero(np.bincount(local_req, minlength=len(rows)) == 0)
        if len(lost):
            every = np.arange(len(self.offer_index))
            staged = self._attributes_ok(accept, lost, every)
            has_any = staged.any(axis=1)
            for i in lost[~has_any]:
                no_pair_reason[rows[i]] = NO_COMPATIBLE_OFFER
            masks = (
                (region_accept[lost][:, self.off_region], REGION),
                (self._window_ok(window, lost, every), WINDOW),
                (self._prices(rows, lost, every) <= ceiling[lost][:, None], PRICE_CEILING),
            )
            for mask, reason in masks:
                staged = staged & mask
                still = staged.any(axis=1)
                for i in lost[has_any & ~still]:
                    no_pair_reason[rows[i]] = reason
                has_any = still
        return rows[local_req], self.offer_index[local_off]

    def _prices(self, rows: np.ndarray, takers: np.ndarray, offers: np.ndarray) -> np.ndarray:
        """price[i, j]: what request rows[takers[i]]'s startup pays per unit of offer offers[j]
        (positions in `offer_index`)."""
        base = self.off_price[offers][None, :]
        if not self.own:
            return base
        startups = self.req_startup[rows[takers]]
        return self.own.lookup(startups[:, None], self.offer_index[offers][None, :], base)

    def _attribute_accept(self, requests: list) -> dict[str, np.ndarray]:
        """Per attribute a request names: accept[i, c], request i takes value code c (column
        0, the offer doesn't say, is never accepted by a request that names it)."""
        accept = {}
        for name in sorted({name for r in requests for name in r.attributes}):
            codes = self.values.get(name, {})
            table = np.ones((len(requests), len(codes) + 1), dtype=bool)
            for i, r in enumerate(requests):
                wanted = r.attributes.get(name)
                if wanted is None:
                    continue
                table[i, :] = False
                for value in wanted:
                    code = codes.get(value)
                    if code is not None:
                        table[i, code] = True
            accept[name] = table
        return accept

    def _attributes_ok(self, accept: dict[str, np.ndarray], takers: np.ndarray,
                       offers: np.ndarray) -> np.ndarray:
        ok = np.ones((len(takers), len(offers)), dtype=bool)
        for name, table in accept.items():
            off_codes = self.off_values.get(name)
            if off_codes is None:  # no offer of the kind has it: only silent requests pass
                ok &= table[takers, :1]
            else:
                ok &= table[takers][:, off_codes[offers]]
        return ok

    def _region_accept(self, requests: list) -> np.ndarray:
        region_accept = np.ones((len(requests), len(self.regions)), dtype=bool)
        region_code = {name: i for i, name in enumerate(self.regions)}
        for i, r in enumerate(requests):
            if r.regions is not None:
                region_accept[i, :] = False
                for name in r.regions:
                    code = region_code.get(name)
                    if code is not None:
                        region_accept[i, code] = True
        return region_accept

    def _window_ok(self, window: tuple[np.ndarray, np.ndarray], takers: np.ndarray,
                   offers: np.ndarray) -> np.ndarray:
        start, end = window
        return (self.off_start[offers][None, :] <= start[takers][:, None]) & (
            self.off_end[offers][None, :] >= end[takers][:, None]
        )


def viable_pairs(problem: Problem) -> np.ndarray:
    """Per compatible pair, whether any feasible answer could put a positive quantity on it.

    A pair is ruled out only by a rule that no other grant can change:
      - an indivisible offer serves the whole quantity or nothing, so it is out when the
        quantity exceeds the offer's `available`, the startup's share cap of the kind, or
        (at the offer's price) the startup's whole budget;
      - a request with a minimum is out altogether when the minimum exceeds its share cap,
        everything its compatible divisible offers hold, or what its budget buys at the
        cheapest of them.
    Fixing such variables to 0 removes no feasible answer, so the LP over viable pairs is
    still a relaxation of the full problem (a tighter one: the plain LP would count, say,
    78% of a 250-unit data line for a startup whose cap is 195 units, which no answer can
    grant). A small tolerance keeps borderline pairs in (erring on the bound's safe side).
    """
    n_pairs = len(problem.pair_req)
    if n_pairs == 0:
        return np.ones(0, dtype=bool)
    tol = 1e-6
    req, off = problem.pair_req, problem.pair_off
    q = problem.req_qty[req]
    group_cap = problem.group_cap[problem.req_group[req]]
    budget = problem.startup_budget[problem.req_startup[req]]
    price = problem.pair_price
    divisible = problem.off_divisible[off]
    whole_ok = (
        (q <= problem.off_cap[off] * (1 + tol) + tol)
        & (q <= group_cap * (1 + tol) + tol)
        & (q * price <= budget * (1 + tol) + tol)
    )
    n = len(problem.req_qty)
    m = problem.req_min
    div_cap = np.bincount(req[divisible], weights=problem.off_cap[off][divisible], minlength=n)
    cheapest = np.full(n, np.inf)
    np.minimum.at(cheapest, req[divisible], price[divisible])
    spend = np.where(m > 0, m * np.where(np.isfinite(cheapest), cheapest, 0.0), 0.0)
    min_ok = (
        (m <= problem.group_cap[problem.req_group] * (1 + tol) + tol)
        & (m <= div_cap * (1 + tol) + tol)
        & (spend <= problem.startup_budget[problem.req_startup] * (1 + tol) + tol)
    )
    return np.where(divisible, min_ok[req], whole_ok)


def restrict_to_kind(problem: Problem, kind: int, budget: np.ndarray) -> tuple[Problem, np.ndarray, np.ndarray]:
    """The sub-problem of one kind, with these per-startup budgets; and the global indices of
    its requests and of its pairs (its offers keep their global numbering)."""
    requests = np.flatnonzero(problem.req_kind == kind)
    capacity = np.where(problem.off_kind == kind, problem.off_cap, 0.0)
    sub, pairs = restrict_to_requests(dataclasses.replace(problem, startup_budget=budget), requests, capacity)
    return sub, requests, pairs


def restrict_to_requests(
    problem: Problem, requests: np.ndarray, off_cap: np.ndarray, pairs: np.ndarray | None = None
) -> tuple[Problem, np.ndarray]:
    """The sub-problem of these requests (sorted global indices), with these offer capacities;
    and the global indices of its pairs (`pairs`, sorted, if the caller has them: all pairs
    of these requests). Offers and startups keep their global numbering (a startup without
    requests here has no budget row); groups are renumbered."""
    local = np.full(problem.n_requests, -1, dtype=np.int64)
    local[requests] = np.arange(len(requests))
    if pairs is None:
        pairs = np.flatnonzero(local[problem.pair_req] >= 0)
    pair_req = local[problem.pair_req[pairs]]
    groups, req_group = np.unique(problem.req_group[requests], return_inverse=True)
    sub = Problem(
        instance=problem.instance,
        req_kind=problem.req_kind[requests],
        req_startup=problem.req_startup[requests],
        req_group=req_group.astype(np.int64),
        req_qty=problem.req_qty[requests],
        req_min=problem.req_min[requests],
        req_weight=problem.req_weight[requests],
        req_value=problem.req_value[requests],
        req_seniority=problem.req_seniority[requests],
        off_kind=problem.off_kind,
        off_cap=off_cap,
        off_price=problem.off_price,
        off_divisible=problem.off_divisible,
        startup_budget=problem.startup_budget,
        group_cap=problem.group_cap[groups],
        pair_req=pair_req,
        pair_off=problem.pair_off[pairs],
        req_ptr=np.searchsorted(pair_req, np.arange(len(requests) + 1)).astype(np.int64),
        no_pair_reason=[problem.no_pair_reason[r] for r in requests.tolist()],
        pair_viable=problem.pair_viable[pairs],
        pair_price=problem.pair_price[pairs],
    )
    return sub, pairs
