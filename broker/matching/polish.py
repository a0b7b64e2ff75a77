"""Polish: the integer problem itself, solved by HiGHS's branch and bound over the pairs the
LP and the chosen answer use.

The repair (engine.py) turns the LP's fractions into grants one request at a time, so it
loses where integrality bites: a request the LP served below its minimum is dropped, a data
line the LP split between offers is given whole to one or to none. Here the MIP decides those
together — which minimum-holders to serve in full and whom to cut back for them, which lines
go where — one kind at a time, over a small set of columns: every pair the LP (or the market
blocks) put weight on and every pair the answer uses (10k benchmark instance: ≈ 9k columns
with `widen`, 0.2–0.4 s, 7592.55 → 7603.45, 99.51% → 99.66% of the LP; 100k: ≈ 86k columns,
≈ 4 s on two threads, +171).

Variables per pair: a divisible offer gives units x ≥ 0; an indivisible one a binary y (the
whole quantity from that offer). Per request one row, units ≤ quantity (so a whole line, which
fills the row, leaves no room for anything else: one offer, whole, alone), and where it has a
minimum a binary z with min·z ≤ units ≤ quantity·z, fixed at 1 where the answer serves it
(it keeps at least its minimum; the MIP decides whom to add and whom to cut back). Offers,
share caps and budgets are rows over what the requests outside the MIP leave.

HiGHS starts from the current answer (`setSolution`), so it never hands back less; its answer
goes back through the `Ledger`, which accepts only grants that keep every rule, then the kind
is topped up. If that comes out lower than before (solver round-off turning a grant away),
the kind is put back as it was. The result is therefore feasible and never worse.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from broker.resources import KIND_NAMES

from .grants import Ledger, fill
from .highs import new_highs
from .problem import Problem
from .relaxation import column_costs

# HiGHS's integrality tolerance is 1e-6: a binary at 0.999999 is taken as 1.
_HALF = 0.5
# Up to this many support columns the kinds' MIPs run one after the other (exact budgets);
# above, on two threads (10k × 1k: ≈ 6.4k columns, 0.3 s; 100k × 10k: ≈ 86k, several seconds).
# The default of `EngineOptions.polish_one_lane_columns`, which the engine passes in.
ONE_LANE_COLUMNS = 40_000


def polish(
    ledger: Ledger,
    support: np.ndarray,
    order: list[int],
    time_limit: float | None,
    widen: bool = False,
    one_lane_columns: int = ONE_LANE_COLUMNS,
) -> dict:
    """Improve `ledger` in place by MIPs over the pairs in `support` and those it uses.

    `order` is the top-up order for what the MIPs leave. With `widen`, every request without
    a pair in `support` also gets its cheapest viable pair, so the MIP can serve requests the
    LP left out (10k: 7602.46 → 7603.46 in 0.4 s instead of 0.22 s; at 100k the branch and
    bounds then need ≈ 16 s instead of ≈ 4 s, so the large path doesn't widen). Returns
    stats."""
    started = time.perf_counter()
    problem = ledger.problem
    support = support[problem.pair_viable[support]]
    if widen:
        support = np.union1d(support, _cheapest_for_the_rest(problem, support))
    order = np.asarray(order, dtype=np.int64)
    stats: dict = {"support": int(len(support)), "before": round(ledger.objective(), 6),
                   "kinds": {}}
    # One MIP per kind (kinds share no offer and no share cap): several small branch and
    # bounds are much faster than one big one (0.24 s against 0.75 s at 10k). Only budgets
    # span kinds: up to `one_lane_columns` the kinds go one after the other, each over what
    # the ones before it left; above, on two threads, each kind with what its requests spend
    # now plus a part of what the startup has left (`_spare_budget`).
    support_kind = problem.req_kind[problem.pair_req[support]]
    holding = np.array([bool(g) for g in ledger.grants], dtype=bool)
    kinds = sorted(set(support_kind.tolist()) | set(problem.req_kind[holding].tolist()))
    mine = {k: support[support_kind == k] for k in kinds}
    if len(support) <= one_lane_columns:
        size_left = len(support) + len(kinds)
        for kind in kinds:
            share = None
            if time_limit is not None:
                left = time_limit - (time.perf_counter() - started)
                share = left * (len(mine[kind]) + 1) / size_left
            size_left -= len(mine[kind]) + 1
            model = _Model(ledger, kind, mine[kind], np.maximum(ledger.budget_left, 0.0),
                           ledger.held())
            stats["kinds"][KIND_NAMES[kind]] = _apply(ledger, model, model.solve(share), order)
    else:
        spare = _spare_budget(ledger, kinds)
        held = ledger.held()
        models = {k: _Model(ledger, k, mine[k], spare[k], held) for k in kinds}
        runs = _run_lanes(models, None if time_limit is None
                          else time_limit - (time.perf_counter() - started))
        for kind in kinds:  # kind order, whatever order the threads finished in
            stats["kinds"][KIND_NAMES[kind]] = _apply(ledger, models[kind], runs[kind], order)
    stats.update(after=round(ledger.objective(), 6),
                 seconds=round(time.perf_counter() - started, 3))
    return stats


def exact(problem: Problem, time_limit: float | None) -> dict:
    """The whole problem as one MIP over every compatible pair, by HiGHS from scratch (a
    reference for the benchmark, not part of the engine: 44 s at 10k × 1k, far too slow at
    100k), on the plain objective (no tie-break nudges). Its dual bound caps the best answer
    any method can find."""
    started = time.perf_counter()
    ledger = Ledger(problem)
    if problem.n_pairs == 0:
        return {"objective": 0.0, "bound": 0.0, "status": "Optimal", "seconds": 0.0}
    model = _Model(ledger, None, np.arange(problem.n_pairs), np.array(ledger.budget_left),
                   ledger.held())
    h = model.run(time_limit, nudges=False)
    info = h.getInfo()
    return {"objective": float(info.objective_function_value),
            "bound": float(info.mip_dual_bound),
            "status": h.modelStatusToString(h.getModelStatus()),
            "seconds": round(time.perf_counter() - started, 3)}


def _cheapest_for_the_rest(problem: Problem, support: np.ndarray) -> np.ndarray:
    """Each request's cheapest viable pair, for the requests with none in `support`."""
    viable = np.flatnonzero(problem.pair_viable)
    requests, first = np.unique(problem.pair_req[viable], return_index=True)
    covered = np.zeros(problem.n_requests, dtype=bool)
    covered[problem.pair_req[support]] = True
    return viable[first[~covered[requests]]]


def _spare_budget(ledger: Ledger, kinds: list[int]) -> np.ndarray:
    """Per kind and startup, its part of what the startup has left to spend: in proportion to
    what its requests of the kind still lack, at their cheapest offers (equal parts where
    nothing is lacking). On the 10k instance this keeps ≈ 85% of the gain of polishing the
    kinds one after the other over the real remaining budget; an equal split kept 75%."""
    problem = ledger.problem
    n_kinds, n_startups = len(KIND_NAMES), len(problem.startup_budget)
    has_pair = np.diff(problem.req_ptr) > 0
    cheapest = np.zeros(problem.n_requests)
    cheapest[has_pair] = problem.pair_price[problem.req_ptr[:-1][has_pair]]
    lacking = np.maximum(problem.req_qty - np.array(ledger.granted), 0.0) * cheapest
    need = np.zeros((n_kinds, n_startups))
    np.add.at(need, (problem.req_kind, problem.req_startup), lacking)
    asks = np.zeros((n_kinds, n_startups))
    asks[problem.req_kind, problem.req_startup] = 1.0
    mask = np.zeros(n_kinds, dtype=bool)
    mask[kinds] = True
    need[~mask] = 0.0
    asks[~mask] = 0.0
    total = need.sum(axis=0)
    share = np.where(total > 0, need / np.where(total > 0, total, 1.0),
                     asks / np.maximum(asks.sum(axis=0), 1.0))
    left = np.maximum(np.array(ledger.budget_left), 0.0)
    return np.multiply(left[None, :], share, out=np.zeros_like(share), where=share > 0)


def _run_lanes(models: dict[int, "_Model"], time_limit: float | None) -> dict[int, tuple]:
    """Solve the models on two threads (HiGHS releases the GIL), largest first, each model
    its lane's time left in proportion to its size."""
    lanes: list[list[int]] = [[], []]
    load = [0, 0]
    for kind in sorted(models, key=lambda k: (-models[k].n_columns, k)):
        lane = 0 if load[0] <= load[1] else 1
        lanes[lane].append(kind)
        load[lane] += models[kind].n_columns
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    runs: dict[int, tuple] = {}

    def run(lane: list[int]) -> None:
        size_left = sum(models[k].n_columns for k in lane)
        for kind in lane:
            share = None
            if deadline is not None:
                share = (deadline - time.perf_counter()) * models[kind].n_columns / size_left
            size_left -= models[kind].n_columns
            runs[kind] = models[kind].solve(share)

    threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


def _apply(ledger: Ledger, model: "_Model", run: tuple, order: np.ndarray) -> dict:
    """Put one kind's MIP answer into the ledger (only the requests whose grants it changes),
    then top up the kind; if that comes out lower than before (solver round-off turning
    grants away), put the kind back as it was."""
    status, values, seconds = run
    stats = {"status": status, "columns": len(model.columns),
             "requests": len(model.requests), "seconds": seconds}
    if values is None:  # no solution at all
        return stats
    problem = ledger.problem
    x = values[: len(model.columns)]
    changed = np.unique(model.req[np.abs(x - model.start[: len(model.columns)]) > 1e-9])
    of_kind = order[problem.req_kind[order] == model.kind]
    moving = of_kind[np.isin(of_kind, changed)].tolist()
    before = _value(ledger, of_kind)
    kept = [(r, dict(ledger.grants[r]), ledger.whole[r]) for r in of_kind.tolist()
            if ledger.grants[r]]
    for r in moving:
        ledger.revoke(r)
    model.apply(ledger, x, moving)
    fill(ledger, of_kind.tolist())
    after = _value(ledger, of_kind)
    if after < before - 1e-9:
        for r in of_kind.tolist():
            ledger.revoke(r)
        for r, grants, whole in kept:
            ledger.commit(r, list(grants.items()), whole=whole)
        stats["restored"] = True
        after = before
    stats.update(changed=len(moving), gain=round(after - before, 6))
    return stats


def _value(ledger: Ledger, requests: np.ndarray) -> float:
    """Σ weight × granted / asked over these requests."""
    p = ledger.problem
    granted = np.array(ledger.granted)[requests]
    return float((p.req_weight[requests] * granted / p.req_qty[requests]).sum())


class _Model:
    """One kind's MIP (or, with kind None, every kind's): its columns (pairs) first, then one
    z per request with a minimum."""

    def __init__(self, ledger: Ledger, kind: int | None, support: np.ndarray,
                 spare: np.ndarray, held: tuple[np.ndarray, np.ndarray]) -> None:
        problem = ledger.problem
        self.problem, self.kind = problem, kind
        # Columns: the support and whatever the kind's requests hold now (`held`: the ledger's
        # pairs and quantities), sorted as pairs are (by request, cheapest first).
        held_pairs, held_qty = held
        if kind is not None:
            mine = problem.req_kind[problem.pair_req[held_pairs]] == kind
            held_pairs, held_qty = held_pairs[mine], held_qty[mine]
        self.columns = columns = np.union1d(support, held_pairs)
        self.requests = requests = np.unique(problem.pair_req[columns])
        req, off = problem.pair_req[columns], problem.pair_off[columns]
        self.req, self.off = req, off
        self.whole = ~problem.off_divisible[off]
        # Units one unit of the variable stands for: a whole line is its quantity.
        self.unit = np.where(self.whole, problem.req_qty[req], 1.0)
        self.gated = requests[problem.req_min[requests] > 0]  # requests with a z
        self.n_columns = len(columns) + len(self.gated)

        # The kind's offers and share caps as the requests outside the MIP leave them (what
        # these hold goes back in); each startup's budget: what its requests here spend now,
        # plus its spare part.
        held_req, held_off = problem.pair_req[held_pairs], problem.pair_off[held_pairs]
        self.cap = np.array(ledger.cap_left) + np.bincount(
            held_off, weights=held_qty, minlength=problem.n_offers)
        self.group_left = np.array(ledger.group_left) + np.bincount(
            problem.req_group[held_req], weights=held_qty, minlength=len(problem.group_cap))
        self.budget_left = spare + np.bincount(
            problem.req_startup[held_req], weights=held_qty * problem.pair_price[held_pairs],
            minlength=len(problem.startup_budget))
        self.start = np.zeros(self.n_columns)
        at = np.searchsorted(columns, held_pairs)
        self.start[at] = np.where(self.whole[at], 1.0, held_qty)
        granted = np.bincount(held_req, weights=held_qty, minlength=problem.n_requests)
        self.start[len(columns):] = granted[self.gated] > 0

    def solve(self, time_limit: float | None) -> tuple[str, np.ndarray | None, float]:
        """HiGHS's branch and bound from the current answer: status, values, seconds."""
        started = time.perf_counter()
        if len(self.columns) == 0:
            return "nothing to polish", None, 0.0
        if time_limit is not None and time_limit < 0.01:
            return "skipped: no time left", None, 0.0
        h = self.run(time_limit)
        solution = h.getSolution()
        values = np.asarray(solution.col_value, dtype=float)
        found = solution.value_valid and len(values) == self.n_columns
        return (h.modelStatusToString(h.getModelStatus()), values if found else None,
                round(time.perf_counter() - started, 3))

    def run(self, time_limit: float | None, nudges: bool = True):
        """A HiGHS model of this MIP, run single-threaded (deterministic) within the limit."""
        import highspy  # heavy: loaded only when a solve actually needs it

        h = new_highs()
        h.setOptionValue("threads", 1)
        h.setOptionValue("random_seed", 0)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        self.load(h, highspy, nudges)
        h.run()
        return h

    def load(self, h, highspy, nudges: bool = True) -> None:
        p = self.problem
        inf = highspy.kHighsInf
        req, off = self.req, self.off
        offers = np.unique(off)
        finite_groups = np.unique(p.req_group[self.requests])
        finite_groups = finite_groups[np.isfinite(p.group_cap[finite_groups])]
        startups = np.unique(p.req_startup[self.requests])
        startups = startups[np.isfinite(p.startup_budget[startups])]
        # Row numbers: offers, groups, budgets, requests (units ≤ quantity·z or quantity),
        # minimums (units − min·z ≥ 0).
        offer_row = np.full(p.n_offers, -1)
        offer_row[offers] = np.arange(len(offers))
        base = len(offers)
        group_row = np.full(len(p.group_cap), -1)
        group_row[finite_groups] = base + np.arange(len(finite_groups))
        base += len(finite_groups)
        budget_row = np.full(len(p.startup_budget), -1)
        budget_row[startups] = base + np.arange(len(startups))
        base += len(startups)
        request_row = np.full(p.n_requests, -1)
        request_row[self.requests] = base + np.arange(len(self.requests))
        base += len(self.requests)
        min_row = np.full(p.n_requests, -1)
        min_row[self.gated] = base + np.arange(len(self.gated))
        n_rows = base + len(self.gated)

        lower = np.full(n_rows, -inf)
        upper = np.concatenate([
            np.maximum(self.cap[offers], 0.0),
            np.maximum(self.group_left[finite_groups], 0.0),
            np.maximum(self.budget_left[startups], 0.0),
            p.req_qty[self.requests],
            np.full(len(self.gated), inf),
        ])
        upper[request_row[self.gated]] = 0.0  # units − quantity·z ≤ 0
        lower[min_row[self.gated]] = 0.0
        h.addRows(n_rows, lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))

        unit = self.unit
        price = p.pair_price[self.columns]
        rows = np.stack([offer_row[off], group_row[p.req_group[req]],
                         budget_row[p.req_startup[req]], request_row[req], min_row[req]], axis=1)
        vals = np.stack([unit, unit, unit * price, unit, unit], axis=1)
        keep = rows >= 0
        keep[:, 2] &= vals[:, 2] > 0  # a free offer puts no load on the budget
        # The LP's objective per unit fraction (weight and the earlier-submission nudge, unless
        # told not to), per unit of the variable.
        per_fraction = column_costs(p, self.columns) if nudges else p.req_weight[req]
        cost = per_fraction * unit / p.req_qty[req]
        self._add_columns(h, cost, np.where(self.whole, 1.0, p.req_qty[req]), rows, vals, keep)
        gated = self.gated
        z_rows = np.stack([request_row[gated], min_row[gated]], axis=1)
        z_vals = np.stack([-p.req_qty[gated], -p.req_min[gated]], axis=1)
        # A request the answer serves keeps at least its minimum (z fixed at 1; its amounts
        # and offers may still change): the MIP decides only whom to add. At 100k this cut
        # the GPU kind's branch and bound from 8.6 s to 0.4 s for 97% of its gain.
        self._add_columns(h, np.zeros(len(gated)), np.ones(len(gated)), z_rows, z_vals,
                          np.ones(z_rows.shape, dtype=bool), lower=self.start[len(self.columns):])

        integer = np.flatnonzero(np.concatenate([self.whole, np.ones(len(gated), dtype=bool)]))
        if len(integer):
            h.changeColsIntegrality(
                len(integer), integer.astype(np.int32),
                np.full(len(integer), highspy.HighsVarType.kInteger),
            )
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        start = highspy.HighsSolution()
        start.col_value = self.start.tolist()
        start.value_valid = True
        h.setSolution(start)

    @staticmethod
    def _add_columns(h, cost, upper, rows, vals, keep, lower=None) -> None:
        if len(cost) == 0:
            return
        counts = keep.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        h.addCols(len(cost), cost, np.zeros(len(cost)) if lower is None else lower, upper,
                  int(keep.sum()), starts, rows[keep].astype(np.int32), vals[keep])

    def apply(self, ledger: Ledger, x: np.ndarray, requests: list[int]) -> None:
        """Grant the MIP's answer (`x`, per column) to these requests, in this order, through
        the ledger."""
        mine = np.zeros(self.problem.n_requests, dtype=bool)
        mine[requests] = True
        plans: dict[int, list[tuple[int, float]]] = {}
        whole: dict[int, int] = {}
        for j in np.flatnonzero((x > 1e-9) & mine[self.req]).tolist():
            r, o = int(self.req[j]), int(self.off[j])
            if self.whole[j]:
                if x[j] > _HALF:
                    whole[r] = o
            else:
                plans.setdefault(r, []).append((o, float(x[j])))
        for r in requests:
            if r in whole:
                ledger.grant_whole(r, whole[r])
            elif r in plans:
                ledger.grant_divisible(r, plans[r])
