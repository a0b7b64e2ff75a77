"""The matching engine: LP relaxation with HiGHS, repaired into an integer-feasible answer.

    1. index the instance, list every compatible pair, mark the viable ones (problem.py)
    2. greedy answers: the staff's priority queue and weight-per-unit       (grants.py)
    3. up to 400k pairs: the LP relaxation by column generation, primal simplex started
       from the weight-per-unit greedy answer                               (relaxation.py)
       above: a batched max-flow greedy for prices (the bound) and a flow to repair, then
       per-kind LP blocks on two threads if time is left                    (flow.py, here)
    4. repair: keep the LP's (or flow's) divisible grants that meet their minimum, give
       indivisible lines whole in the order it favours them, then top everyone up (here)
    5. keep the best of the candidates, round, check exactly, move grants to cheaper offers
       with room, check again, explain                  (rounding.py, grants.py, explain.py)

The bound comes from duals (the LP's, or the flow's prices) priced over *all* viable pairs,
so it holds for the full problem whatever columns the LP saw and however early a time limit
stopped it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from broker.resources import KIND_NAMES

from .explain import reasons
from .flow import batched_flow, budget_dual_candidates
from .grants import Ledger, cheapen, density_order, fill, priority_order
from .model import Allocation, Instance, Result
from .problem import Problem, build_problem, restrict_to_kind
from .relaxation import (
    Holdings,
    dual_bound,
    lagrangian_bound,
    primary_objective,
    solve_relaxation,
)
from .rounding import round_grants

# Cheapest compatible offers per request that start the column generation (beside the
# greedy answers' own pairs).
_INITIAL_CHEAPEST = 1
# Up to this many compatible pairs the whole LP is solved at once (10k × 1k: 150k pairs, ≈ 1.5 s);
# above it, per kind on two threads first (100k × 10k: 1.5M pairs).
_WHOLE_LP_MAX_PAIRS = 400_000
# Seconds per request kept back from the LP for what follows it (repairs, rounding, moving
# to cheaper offers, reasons: ≈ 6–12 s at 100k requests on a busy machine).
_POST_SECONDS_PER_REQUEST = 1.3e-4
# Below this, per-kind LP blocks are not started.
_MIN_BLOCK_SECONDS = 8.0
# Batches of the max-flow greedy whose prices give the bound above that size (≈ 0.4 s each at
# 1.5M pairs; more batches, tighter prices).
_FLOW_BATCHES = 24


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
        def left() -> float | None:
            # What the LP may use: the limit less a reserve for the repair, rounding and
            # reasons that follow it (a fifth of the limit, or more on a big instance).
            if time_limit is None:
                return None
            reserve = max(0.2 * time_limit, _POST_SECONDS_PER_REQUEST * problem.n_requests)
            return max(0.05, time_limit - reserve - (time.perf_counter() - started))

        start = _ledger_pairs(problem, candidates["greedy_density"])
        initial = np.concatenate([
            start[0], _ledger_pairs(problem, candidates["greedy_priority"])[0],
            _cheapest_pairs(problem, _INITIAL_CHEAPEST),
        ])
        # One LP over everything while HiGHS can finish it in time; beyond that, a batched
        # max flow (its prices give the bound, its flow a repaired answer), then per-kind
        # LP blocks on both cores with whatever time is left (see `_relax_blocks`).
        if problem.n_pairs <= _WHOLE_LP_MAX_PAIRS:
            relaxed = _relax_whole(problem, initial, left(), start)
            bound = min(bound, relaxed.bound)
            lp_stats = relaxed.stats
        else:
            t = time.perf_counter()
            remaining = left()
            answer = batched_flow(problem, _FLOW_BATCHES,
                                  None if remaining is None else time.perf_counter() + remaining)
            flow_bound = lagrangian_bound(problem, answer.offer_price, answer.group_price,
                                          budget_dual_candidates(problem))
            bound = min(bound, flow_bound)
            flow_stats = {"bound": round(flow_bound, 6), "batches": _FLOW_BATCHES,
                          "complete": answer.complete, "seconds": _since(t)}
            t = time.perf_counter()
            candidates["flow_repair"] = _repair(
                problem, answer.pairs,
                answer.amounts / problem.req_qty[problem.pair_req[answer.pairs]],
            )
            flow_stats["repair_seconds"] = _since(t)
            remaining = left()
            if remaining is None or remaining > _MIN_BLOCK_SECONDS:
                relaxed = _relax_blocks(problem, initial, remaining, start)
                bound = min(bound, relaxed.bound)
                lp_stats = relaxed.stats
            else:
                relaxed = None
                lp_stats = {"status": "skipped: no time left"}
            lp_stats["flow"] = flow_stats
        if relaxed is not None:
            t = time.perf_counter()
            candidates["lp_repair"] = _repair(problem, relaxed.columns, relaxed.fraction)
            lp_stats["repair_seconds"] = _since(t)

    name, best = _best(candidates)
    round_grants(best)
    # Cheaper offers with room left take over grants (same quantities), then the exact check
    # runs again on the moved numbers.
    before = best.objective()
    kept = [(dict(g), w) for g, w in zip(best.grants, best.whole)]
    cheapen(best, density_order(problem))
    round_grants(best)
    if best.objective() < before - 1e-9:  # the exact check took something back: undo
        for r, (grants, whole) in enumerate(kept):
            best.revoke(r)
            if grants:
                best.commit(r, list(grants.items()), whole=whole)
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
    objective = {name: round(ledger.objective(), 9) for name, ledger in candidates.items()}
    top = max(objective.values())
    # Costs and splits only matter among the ties (and take a pass over every grant).
    tied = [(name, ledger) for name, ledger in candidates.items() if objective[name] == top]

    def key(item: tuple[str, Ledger]):
        name, ledger = item
        return (round(ledger.cost(), 6), ledger.split_count(), name)

    return min(tied, key=key)


@dataclass
class _Relaxed:
    columns: np.ndarray
    fraction: np.ndarray
    bound: float
    stats: dict


def _relax_whole(
    problem: Problem, initial: np.ndarray, time_limit: float | None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> _Relaxed:
    """One LP over every kind: exact when budgets tie kinds together."""
    relaxation = solve_relaxation(
        problem, Holdings.none(problem), initial, time_limit=time_limit, start=start
    )
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


def _relax_blocks(
    problem: Problem, initial: np.ndarray, time_limit: float | None,
    start: tuple[np.ndarray, np.ndarray],
) -> _Relaxed:
    """The LP in two stages, using both cores.

    1. One LP per kind, two threads at once (HiGHS releases the GIL), each startup's budget
       split between its kinds: what the greedy start spends there plus a share of the rest.
       Each block starts from the greedy answer (primal simplex: every iterate is feasible,
       so a block cut short by the time limit still hands back an answer at least as good).
    2. The whole LP, started from the blocks' answers put together (feasible: the split
       budgets add up to the real ones), which only has to move budget between kinds.

    The bound is the better (lower) of the whole LP's and the blocks' Lagrangian bound; both
    price every compatible pair, so both are valid whatever stage the clock stopped.
    """
    started = time.perf_counter()
    deadline = None if time_limit is None else started + time_limit
    pairs_of, amounts_of = start
    n_kinds = len(KIND_NAMES)
    spend = np.zeros((n_kinds, len(problem.startup_budget)))
    start_req = problem.pair_req[pairs_of]
    np.add.at(spend, (problem.req_kind[start_req], problem.req_startup[start_req]),
              amounts_of * problem.off_price[problem.pair_off[pairs_of]])
    budget = _split_budgets(problem, spend)

    pair_kind = problem.req_kind[problem.pair_req]
    sizes = np.bincount(pair_kind, minlength=n_kinds)
    # Two lanes of about equal work, largest kinds first; the split is a fixed function of
    # the instance, so it doesn't change the answer (only the timing).
    lanes: list[list[int]] = [[], []]
    load = [0, 0]
    for kind in sorted(range(n_kinds), key=lambda k: (-sizes[k], k)):
        if sizes[kind] == 0:
            continue
        lane = 0 if load[0] <= load[1] else 1
        lanes[lane].append(kind)
        load[lane] += int(sizes[kind])
    start_kind = problem.req_kind[start_req]
    init_kind = problem.req_kind[problem.pair_req[initial]]
    done: dict[int, tuple] = {}

    def run(kinds: list[int]) -> None:
        left_pairs = int(sum(sizes[k] for k in kinds))
        for kind in kinds:
            sub, requests, pairs = restrict_to_kind(problem, kind, budget[kind])
            share = None
            if deadline is not None:
                share = max(0.01, (deadline - time.perf_counter()) * sizes[kind] / left_pairs)
            left_pairs -= int(sizes[kind])
            mine = start_kind == kind
            relaxation = solve_relaxation(
                sub, Holdings.none(sub), np.searchsorted(pairs, initial[init_kind == kind]),
                time_limit=share,
                start=(np.searchsorted(pairs, pairs_of[mine]), amounts_of[mine]),
            )
            done[kind] = (requests, pairs, relaxation)

    threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    block_seconds = _since(started)

    offer_dual = np.zeros(problem.n_offers)
    group_dual = np.zeros(len(problem.group_cap))
    budget_choices = [np.zeros(len(problem.startup_budget))]
    columns, fractions, per_kind = [], [], {}
    for kind in sorted(done):
        requests, pairs, relaxation = done[kind]
        mine = start_kind == kind
        start_fraction = amounts_of[mine] / problem.req_qty[start_req[mine]]
        if relaxation.lp_objective < primary_objective(problem, pairs_of[mine], start_fraction):
            # Stopped by the clock in a worse place than its start (HiGHS may hand back an
            # intermediate point): keep the start for this kind.
            columns.append(pairs_of[mine])
            fractions.append(start_fraction)
        else:
            columns.append(pairs[relaxation.columns])
            fractions.append(relaxation.fraction)
        of_kind = problem.off_kind == kind
        offer_dual[of_kind] = relaxation.duals.offer[of_kind]
        sub_groups = np.unique(problem.req_group[requests])
        group_dual[sub_groups] = relaxation.duals.group
        budget_choices.append(relaxation.duals.budget)
        per_kind[KIND_NAMES[kind]] = {
            "status": relaxation.status,
            "objective": round(relaxation.lp_objective, 6),
            "columns": len(relaxation.columns),
            "simplex_iterations": relaxation.iterations,
            "seconds": round(relaxation.seconds, 3),
        }
    block_columns = np.concatenate(columns)
    block_fraction = np.concatenate(fractions)
    per_kind_duals = np.array(budget_choices)
    largest = per_kind_duals.max(axis=0)
    grid = [largest * step for step in np.linspace(0.05, 1.0, 20)]
    block_bound = lagrangian_bound(problem, offer_dual, group_dual,
                                   np.vstack([per_kind_duals, grid]))
    stats = {
        "blocks": per_kind,
        "block_seconds": block_seconds,
        "block_objective": round(primary_objective(problem, block_columns, block_fraction), 6),
        "block_bound": round(block_bound, 6),
    }
    left = None if deadline is None else deadline - time.perf_counter()
    if left is not None and left < 0.05:
        statuses = {v["status"] for v in per_kind.values()}
        stats.update(status="Optimal" if statuses <= {"Optimal"} else "Stopped early",
                     stage="blocks", seconds=_since(started))
        return _Relaxed(block_columns, block_fraction, block_bound, stats)

    used = block_fraction > 1e-12
    joint_start = (block_columns[used],
                   block_fraction[used] * problem.req_qty[problem.pair_req[block_columns[used]]])
    relaxation = solve_relaxation(
        problem, Holdings.none(problem), np.concatenate([block_columns, initial]),
        time_limit=left, start=joint_start,
    )
    joint_bound = dual_bound(problem, relaxation.duals)
    joint_objective = relaxation.lp_objective
    stats.update(
        status=relaxation.status,
        stage="whole",
        objective=round(joint_objective, 6),
        columns=len(relaxation.columns),
        rounds=relaxation.rounds,
        simplex_iterations=relaxation.iterations,
        seconds=_since(started),
    )
    if joint_objective + 1e-9 < stats["block_objective"]:
        # Cut short before it caught up with its own start: the blocks' answer is better.
        return _Relaxed(block_columns, block_fraction, min(block_bound, joint_bound), stats)
    return _Relaxed(relaxation.columns, relaxation.fraction, min(block_bound, joint_bound), stats)


def _split_budgets(problem: Problem, spend: np.ndarray | None = None) -> np.ndarray:
    """Per kind and startup, its share of the startup's budget for the per-kind LPs: what
    `spend` already spends there, plus the rest in proportion to what its requests would
    cost at their cheapest compatible offers. The shares add up to the budget."""
    n_kinds, n_startups = len(KIND_NAMES), len(problem.startup_budget)
    if spend is None:
        spend = np.zeros((n_kinds, n_startups))
    has_pair = np.diff(problem.req_ptr) > 0
    cheapest = np.zeros(problem.n_requests)
    cheapest[has_pair] = problem.off_price[problem.pair_off[problem.req_ptr[:-1][has_pair]]]
    cost = np.zeros((n_kinds, n_startups))
    np.add.at(cost, (problem.req_kind, problem.req_startup), problem.req_qty * cheapest)
    total = cost.sum(axis=0)
    share = np.where(total > 0, cost / np.where(total > 0, total, 1.0), 1.0 / n_kinds)
    budget = problem.startup_budget[None, :]
    finite = np.isfinite(budget)
    rest = np.maximum(np.where(finite, budget, 0.0) - spend.sum(axis=0, keepdims=True), 0.0)
    return np.where(finite, spend + share * rest, np.inf)


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
    return np.flatnonzero((rank < k) & problem.pair_viable)


def _trivial_bound(problem: Problem) -> float:
    """Every request with a compatible offer fully served: the bound of all-zero duals."""
    has_pair = np.bincount(problem.pair_req[problem.pair_viable], minlength=problem.n_requests) > 0
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
