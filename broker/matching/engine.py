"""The matching engine: LP relaxation with HiGHS, repaired into an integer-feasible answer.

    1. index the instance and list every compatible pair               (problem.py)
    2. greedy answers: the staff's priority queue and weight-per-unit  (grants.py)
    3. the LP relaxation by column generation, warm-started from them  (relaxation.py)
    4. repair: keep the LP's divisible grants that meet their minimum, give indivisible lines
       whole in the order the LP favours them, then top everyone up    (here)
    5. keep the best of the candidates, round, check exactly, explain  (rounding.py, explain.py)

The bound comes from the LP duals priced over *all* compatible pairs, so it holds for the
full problem whatever columns the LP saw and however early a time limit stopped it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from broker.resources import KIND_NAMES

from .explain import reasons
from .grants import Ledger, density_order, fill, priority_order
from .model import Allocation, Instance, Result
from .problem import Problem, build_problem, restrict_to_kind
from .relaxation import (
    Holdings,
    binding_budgets,
    dual_bound,
    lagrangian_bound,
    solve_relaxation,
)
from .rounding import round_grants

# Cheapest compatible offers per request that start the column generation (beside the
# greedy answers' own pairs).
_INITIAL_CHEAPEST = 2


def solve(instance: Instance, time_limit: float | None = None) -> Result:
    """The engine's answer: feasible, near-optimal, with its bound and gap in `stats`."""
    started = time.perf_counter()
    problem = build_problem(instance)
    stats: dict = {"requests": problem.n_requests, "offers": problem.n_offers,
                   "compatible_pairs": problem.n_pairs}
    stats["build_seconds"] = _since(started)

    candidates: dict[str, Ledger] = {}
    t = time.perf_counter()
    candidates["greedy_priority"] = _greedy_ledger(problem, priority_order(problem))
    candidates["greedy_density"] = _greedy_ledger(problem, density_order(problem))
    stats["greedy_seconds"] = _since(t)

    bound = _trivial_bound(problem)
    lp_stats: dict = {"status": "skipped"}
    if problem.n_pairs:
        # Keep a fifth of the limit for the repair, rounding and reasons that follow the LP.
        left = None if time_limit is None else max(0.05, 0.8 * time_limit - _since(started))
        initial = np.concatenate([
            _ledger_pairs(problem, ledger)[0] for ledger in candidates.values()
        ] + [_cheapest_pairs(problem, _INITIAL_CHEAPEST)])
        relaxed = (
            _relax_whole(problem, initial, left)
            if _budgets_span_kinds(problem)
            else _relax_by_kind(problem, initial, left)
        )
        bound = min(bound, relaxed.bound)
        lp_stats = relaxed.stats
        t = time.perf_counter()
        candidates["lp_repair"] = _repair(problem, relaxed.columns, relaxed.fraction)
        lp_stats["repair_seconds"] = _since(t)

    name, best = _best(candidates)
    round_grants(best)
    objective = best.objective()
    result_stats = {
        **stats,
        "method": name,
        "solve_seconds": _since(started),
        "objective": objective,
        "bound": bound,
        "gap": _gap(objective, bound),
        "candidates": {k: v.objective() for k, v in sorted(candidates.items())},
        "lp": lp_stats,
        "time_limit": time_limit,
    }
    return _result(best, objective, result_stats)


def greedy(instance: Instance) -> Result:
    """The baseline: the priority queue served in order, each from its cheapest offers."""
    started = time.perf_counter()
    problem = build_problem(instance)
    ledger = _greedy_ledger(problem, priority_order(problem))
    round_grants(ledger)
    objective = ledger.objective()
    bound = _trivial_bound(problem)
    stats = {
        "requests": problem.n_requests,
        "offers": problem.n_offers,
        "compatible_pairs": problem.n_pairs,
        "method": "greedy_priority",
        "solve_seconds": _since(started),
        "objective": objective,
        "bound": bound,
        "gap": _gap(objective, bound),
    }
    return _result(ledger, objective, stats)


# -- pieces ----------------------------------------------------------------------------------


def _greedy_ledger(problem: Problem, order: list[int]) -> Ledger:
    ledger = Ledger(problem)
    fill(ledger, order)
    return ledger


def _repair(problem: Problem, columns: np.ndarray, fraction: np.ndarray) -> Ledger:
    """An integer-feasible answer that follows the LP: its divisible grants first, then its
    indivisible lines whole, then a top-up of everyone by weight per unit."""
    ledger = Ledger(problem)
    used = fraction > 1e-9
    columns, fraction = columns[used], fraction[used]
    req = problem.pair_req[columns]
    off = problem.pair_off[columns]
    amount = fraction * problem.req_qty[req]
    divisible = problem.off_divisible[off]
    # Per request, the LP's mass on divisible and on indivisible offers.
    n = problem.n_requests
    mass_div = np.bincount(req[divisible], weights=fraction[divisible], minlength=n)
    mass_whole = np.bincount(req[~divisible], weights=fraction[~divisible], minlength=n)

    density = density_order(problem)
    rank = np.empty(n, dtype=np.int64)
    rank[density] = np.arange(n)
    # Divisible grants: in weight-per-unit order, each request's LP amounts as given.
    order = np.lexsort((off, rank[req]))
    by_request: dict[int, list[tuple[int, float]]] = {}
    for r, o, q, d in zip(req[order].tolist(), off[order].tolist(), amount[order].tolist(),
                          divisible[order].tolist()):
        if d and mass_div[r] >= mass_whole[r]:
            by_request.setdefault(r, []).append((o, q))
    for r, plan in by_request.items():
        ledger.grant_divisible(r, plan)

    # Indivisible lines: the LP's most confident whole grants first.
    whole = np.flatnonzero(~divisible)
    order = np.lexsort((rank[req[whole]], -fraction[whole]))
    for j in whole[order].tolist():
        r = int(req[j])
        if mass_whole[r] > mass_div[r] and ledger.granted[r] == 0:
            ledger.grant_whole(r, int(off[j]))

    fill(ledger, density)
    return ledger


def _best(candidates: dict[str, Ledger]) -> tuple[str, Ledger]:
    """Highest objective; among (near-)equal ones the cheaper, then the one with fewer splits.
    Candidates are compared in a fixed order so the pick is deterministic."""
    def key(item: tuple[str, Ledger]):
        name, ledger = item
        return (-round(ledger.objective(), 9), round(ledger.cost(), 6), ledger.split_count(), name)

    return min(candidates.items(), key=key)


@dataclass
class _Relaxed:
    columns: np.ndarray
    fraction: np.ndarray
    bound: float
    stats: dict


def _budgets_span_kinds(problem: Problem) -> bool:
    """Whether some startup whose budget can bind has requests of more than one kind."""
    binding = np.zeros(len(problem.startup_budget), dtype=bool)
    binding[binding_budgets(problem)] = True
    mine = binding[problem.req_startup]
    if not mine.any():
        return False
    kinds = np.unique(problem.req_startup[mine] * len(KIND_NAMES) + problem.req_kind[mine])
    return len(np.unique(kinds // len(KIND_NAMES))) < len(kinds)


def _relax_whole(problem: Problem, initial: np.ndarray, time_limit: float | None) -> _Relaxed:
    """One LP over every kind: exact when budgets tie kinds together."""
    relaxation = solve_relaxation(problem, Holdings.none(problem), initial, time_limit=time_limit)
    return _Relaxed(
        columns=relaxation.columns,
        fraction=relaxation.fraction,
        bound=dual_bound(problem, relaxation.duals),
        stats={
            "status": relaxation.status,
            "objective": round(relaxation.lp_objective, 6),
            "columns": int(len(relaxation.columns)),
            "rounds": relaxation.rounds,
            "simplex_iterations": relaxation.iterations,
            "seconds": round(relaxation.seconds, 3),
            "decomposed": False,
        },
    )


def _relax_by_kind(problem: Problem, initial: np.ndarray, time_limit: float | None) -> _Relaxed:
    """One LP per kind: kinds share no offer, so only budgets tie them together.

    Used when no budget that can bind spans kinds, where the split is exact. Should it be
    used otherwise, each startup's budget is split across kinds in proportion to what its
    requests would cost at their cheapest compatible offers (a restriction: every split
    answer is feasible), and the bound stays valid: the offer and share-cap duals of all
    kinds together, with each startup's best budget dual among candidates
    (`lagrangian_bound`), bound the unsplit problem. On district-like data that split cost
    about 2.5% of objective and bound, which is why it is not the default for coupled
    budgets.
    """
    started = time.perf_counter()
    split = _split_budgets(problem)
    offer_dual = np.zeros(problem.n_offers)
    group_dual = np.zeros(len(problem.group_cap))
    budget_choices = [np.zeros(len(problem.startup_budget))]
    columns, fractions, per_kind = [], [], {}
    pairs_left = problem.n_pairs
    for kind in range(len(KIND_NAMES)):
        sub, requests, pairs = restrict_to_kind(problem, kind, split[kind])
        if len(pairs) == 0:
            continue
        share = None
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - started)
            share = max(0.01, left * len(pairs) / pairs_left)
        pairs_left -= len(pairs)
        mine = initial[problem.req_kind[problem.pair_req[initial]] == kind]
        local_initial = np.searchsorted(pairs, mine)
        relaxation = solve_relaxation(sub, Holdings.none(sub), local_initial, time_limit=share)
        columns.append(pairs[relaxation.columns])
        fractions.append(relaxation.fraction)
        of_kind = problem.off_kind == kind
        offer_dual[of_kind] = relaxation.duals.offer[of_kind]
        group_dual[problem.req_group[requests]] = relaxation.duals.group[sub.req_group]
        budget_choices.append(relaxation.duals.budget)
        per_kind[KIND_NAMES[kind]] = {
            "status": relaxation.status,
            "objective": round(relaxation.lp_objective, 6),
            "columns": int(len(relaxation.columns)),
            "rounds": relaxation.rounds,
            "simplex_iterations": relaxation.iterations,
            "seconds": round(relaxation.seconds, 3),
        }
    # Each startup's budget dual lies somewhere between its kinds' duals: try those and a grid
    # up to the largest (every candidate is valid, the best per startup is kept).
    per_kind_duals = np.array(budget_choices)
    largest = per_kind_duals.max(axis=0)
    grid = [largest * step for step in np.linspace(0.05, 1.0, 20)]
    bound = lagrangian_bound(problem, offer_dual, group_dual, np.vstack([per_kind_duals, grid]))
    statuses = {v["status"] for v in per_kind.values()}
    return _Relaxed(
        columns=np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64),
        fraction=np.concatenate(fractions) if fractions else np.zeros(0),
        bound=bound,
        stats={
            "status": "Optimal" if statuses <= {"Optimal"} else "Stopped early",
            "objective": round(sum(v["objective"] for v in per_kind.values()), 6),
            "seconds": _since(started),
            "kinds": per_kind,
            "decomposed": True,
        },
    )


def _split_budgets(problem: Problem) -> np.ndarray:
    """Per kind and startup, its share of the startup's budget for the per-kind LPs."""
    n_kinds, n_startups = len(KIND_NAMES), len(problem.startup_budget)
    has_pair = np.diff(problem.req_ptr) > 0
    cheapest = np.zeros(problem.n_requests)
    cheapest[has_pair] = problem.off_price[problem.pair_off[problem.req_ptr[:-1][has_pair]]]
    cost = np.zeros((n_kinds, n_startups))
    np.add.at(cost, (problem.req_kind, problem.req_startup), problem.req_qty * cheapest)
    total = cost.sum(axis=0)
    share = np.where(total > 0, cost / np.where(total > 0, total, 1.0), 1.0 / n_kinds)
    budget = problem.startup_budget[None, :]
    return np.where(np.isfinite(budget), share * np.where(np.isfinite(budget), budget, 0.0), np.inf)


def _ledger_pairs(problem: Problem, ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """The pair indices a ledger uses, and the quantity on each."""
    req, off, qty = [], [], []
    for r, grants in enumerate(ledger.grants):
        for o, q in grants.items():
            req.append(r)
            off.append(o)
            qty.append(q)
    if not req:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return problem.pair_index(np.array(req), np.array(off)), np.array(qty)


def _cheapest_pairs(problem: Problem, k: int) -> np.ndarray:
    rank = np.arange(problem.n_pairs) - problem.req_ptr[problem.pair_req]
    return np.flatnonzero(rank < k)


def _trivial_bound(problem: Problem) -> float:
    """Every request with a compatible offer fully served: the bound of all-zero duals."""
    has_pair = np.diff(problem.req_ptr) > 0
    return float(problem.req_weight[has_pair].sum())


def _gap(objective: float, bound: float) -> float:
    if bound <= 0:
        return 0.0
    return max(0.0, (bound - objective) / bound)


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 3)


def _result(ledger: Ledger, objective: float, stats: dict) -> Result:
    problem = ledger.problem
    request_ids = [r.id for r in problem.instance.requests]
    offer_ids = [o.id for o in problem.instance.offers]
    allocations = [
        Allocation(request=request_ids[r], offer=offer_ids[o], quantity=q)
        for r, grants in enumerate(ledger.grants)
        for o, q in sorted(grants.items())
        if q > 0
    ]
    allocations.sort(key=lambda a: (a.request, a.offer))
    return Result(
        allocations=tuple(allocations),
        objective=objective,
        unfilled=tuple(reasons(ledger)),
        stats=stats,
    )


__all__ = ["solve", "greedy"]
