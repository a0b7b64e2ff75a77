"""The matching engine: LP relaxation with HiGHS, repaired into an integer-feasible answer.

    1. index the instance, list every compatible pair, mark the viable ones (problem.py)
    2. greedy answers: the staff's priority queue and weight-per-unit       (grants.py)
    3. up to 400k pairs: the LP relaxation by column generation, primal simplex started
       from the weight-per-unit greedy answer                               (relaxation.py)
       above: a batched max-flow greedy, then the LP in blocks of whole startups with the
       offers' capacity split between them, in rounds over different partitions, on two
       threads, from the flow's answer; the bound from the blocks' and the flow's duals;
       per-kind LP blocks too if much time is left                    (flow.py, blocks.py)
    4. repair: keep the LP's (or blocks') divisible grants that meet their minimum, give
       indivisible lines whole in the order it favours them, then top everyone up (here)
    5. keep the best of the candidates, polish it with a MIP per kind over the pairs the LP
       and the answer use                                                    (polish.py)
    6. round, check exactly, move grants to cheaper offers with room, check again, explain
                                                        (rounding.py, grants.py, explain.py)

The bound comes from duals (the LP's, or the flow's prices) priced over *all* viable pairs,
so it holds for the full problem whatever columns the LP saw and however early a time limit
stopped it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from collections.abc import Iterator

import numpy as np

from .blocks import Relaxed, market_blocks, relax_blocks, relax_whole
from .explain import reasons
from .flow import FlowAnswer, batched_flow, budget_dual_candidates
from .grants import Ledger, cheapen, density_order, fill, priority_order
from .model import Allocation, Instance, Result
from .options import DEFAULT_OPTIONS, EngineOptions, TimeBudget, seconds_since
from .polish import exact as exact_mip
from .polish import polish
from .problem import Problem, build_problem
from .relaxation import Holdings, dual_bound, lagrangian_bound, solve_relaxation
from .rounding import round_grants


def solve(instance: Instance, time_limit: float | None = None,
          options: EngineOptions = DEFAULT_OPTIONS) -> Result:
    """The engine's answer: feasible, near-optimal, with its bound and gap in `stats`."""
    with _cyclic_gc_paused():
        return _Solve(instance, time_limit, options).run()


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The solve allocates millions of small objects (grants, plans, ledger lists) that form
    no reference cycles; the cyclic collector's full passes over them cost ≈ 3 s of the 30 at
    100k (25.6 s → 22.8 s without, same peak memory). Reference counting still frees
    everything; the collector is switched back on after, as it was found."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Solve:
    """One solve, phase by phase: `run` is the table of contents. Every phase records its
    seconds in the stats and leaves what it found here: answers in `candidates` (one Ledger
    each, by name), the LP's support in `supports`, the LP's named status (HiGHS's, or
    "skipped" and why) in `lp_stats`. Every request the answer leaves short leaves with its
    reason (`explain.reasons`, in `Result.unfilled`). All time comes from one `TimeBudget`."""

    # Set by `build`, read by every phase after it.
    problem: Problem
    budget: TimeBudget
    large: bool  # above `options.whole_lp_max_pairs`: the max flow and LP blocks path
    bound: float
    stats: dict
    flow_stats: dict  # set by `max_flow` on the large path

    def __init__(self, instance: Instance, time_limit: float | None,
                 options: EngineOptions) -> None:
        self.started = time.perf_counter()
        self.instance = instance
        self.time_limit = time_limit
        self.options = options
        self.candidates: dict[str, Ledger] = {}
        self.supports: list[np.ndarray] = []
        self.relaxed: Relaxed | None = None
        self.lp_stats: dict = {"status": "skipped"}

    def run(self) -> Result:
        self.build()                    # 1. index the instance, compatible and viable pairs
        self.greedy_answers()           # 2. the priority queue's and weight-per-unit answers
        if self.problem.n_pairs:        # 3. the LP relaxation, and its bound
            if not self.large:
                self.relax_whole()      # 3. one LP over everything
            else:
                flow = self.max_flow()  # 3a. a batched max flow and its prices
                self.market_blocks(flow)  # 3b. LP blocks of whole startups, repaired
                self.kind_blocks()      # 3c. per-kind LP blocks, if much time is left
            self.repair_lp()            # 4. the LP's answer repaired into whole grants
        name, best = _best(self.candidates)  # 5. the best answer, polished by MIPs
        polish_stats = self.polish(best)
        self.round_and_cheapen(best)    # 6. round, move to cheaper offers, check again
        return self.result(name, best, polish_stats)

    # 1 --------------------------------------------------------------------------------------

    def build(self) -> None:
        self.problem = build_problem(self.instance)
        self.budget = TimeBudget(self.time_limit, self.problem.n_requests, started=self.started)
        self.large = self.problem.n_pairs > self.options.whole_lp_max_pairs
        self.stats = {"requests": self.problem.n_requests, "offers": self.problem.n_offers,
                      "compatible_pairs": self.problem.n_pairs}
        self.stats["build_seconds"] = seconds_since(self.started)
        self.bound = _trivial_bound(self.problem)  # all-zero duals; each LP phase lowers it

    # 2 --------------------------------------------------------------------------------------

    def greedy_answers(self) -> None:
        t = time.perf_counter()
        self.candidates["greedy_priority"] = _greedy_ledger(self.problem,
                                                            priority_order(self.problem))
        if not self.large or self.time_limit is None:
            # The LP's starting point; on the large path under a time limit it is only needed
            # if the per-kind blocks run (rarely: ≈ 1 s at 100k better spent on the LP blocks).
            self._greedy_density()
        self.stats["greedy_seconds"] = seconds_since(t)

    def _greedy_density(self) -> Ledger:
        if "greedy_density" not in self.candidates:
            self.candidates["greedy_density"] = _greedy_ledger(self.problem,
                                                               density_order(self.problem))
        return self.candidates["greedy_density"]

    def _lp_start(self) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The LP's starting answer (weight per unit) and its first columns: those, the
        priority queue's and each request's cheapest."""
        start = self._greedy_density().held()
        initial = np.concatenate([
            start[0], self.candidates["greedy_priority"].held()[0],
            _cheapest_pairs(self.problem, self.options.initial_cheapest),
        ])
        return start, initial

    def _lp_seconds(self) -> float | None:
        # What an LP may use: the limit less what the repair, rounding and reasons need.
        return self.budget.seconds_left(self.options.after_lp, at_least=0.05)

    # 3 --------------------------------------------------------------------------------------

    def relax_whole(self) -> None:
        """One LP over everything, while HiGHS can finish it in time."""
        start, initial = self._lp_start()
        self.relaxed = relax_whole(self.problem, initial, self._lp_seconds(), start)
        self.bound = min(self.bound, self.relaxed.bound)
        self.lp_stats = self.relaxed.stats

    # 3a -------------------------------------------------------------------------------------

    def max_flow(self) -> FlowAnswer:
        t = time.perf_counter()
        remaining = self._lp_seconds()
        answer = batched_flow(self.problem, self.options.flow_batches,
                              None if remaining is None else time.perf_counter() + remaining)
        self.flow_stats = {"batches": self.options.flow_batches,
                                 "complete": answer.complete, "seconds": seconds_since(t)}
        return answer

    # 3b -------------------------------------------------------------------------------------

    def market_blocks(self, answer: FlowAnswer) -> None:
        """The LP in blocks of whole startups, capacities split by the flow; the repair of
        their answer together replaces the flow's own (a block that can't beat its part of
        the flow keeps it). Their duals blended with the flow's prices give the bound."""
        problem = self.problem
        market = market_blocks(problem, answer.pairs, answer.amounts, answer.offer_price,
                               answer.group_price,
                               self.budget.deadline(self.options.after_market_blocks),
                               self.options)
        self.bound = min(self.bound, market.bound)
        self.flow_stats["market"] = market.stats
        first = market.stats["rounds"][:1]
        if not first or first[0]["blocks_kept_start"] or first[0]["blocks_run"] < market.stats["blocks"]:
            # The flow's prices alone: a weaker bound than the blend once every block of
            # the first round has run (96798 against 95878 at 100k), but maybe not when
            # the clock stopped some before they could.
            flow_bound = lagrangian_bound(problem, answer.offer_price, answer.group_price,
                                          budget_dual_candidates(problem))
            self.bound = min(self.bound, flow_bound)
            self.flow_stats["bound"] = round(flow_bound, 6)
        t = time.perf_counter()
        self.candidates["block_repair"] = _repair(problem, market.columns, market.fraction)
        self.supports.append(market.columns[market.fraction > 1e-9])
        self.flow_stats["repair_seconds"] = seconds_since(t)

    # 3c -------------------------------------------------------------------------------------

    def kind_blocks(self) -> None:
        remaining = self._lp_seconds()
        if remaining is None or remaining > self.options.min_block_seconds:
            start, initial = self._lp_start()
            self.relaxed = relax_blocks(self.problem, initial, remaining, start)
            self.bound = min(self.bound, self.relaxed.bound)
            self.lp_stats = self.relaxed.stats
        else:
            self.lp_stats = {"status": "skipped: no time left"}
        self.lp_stats["flow"] = self.flow_stats

    # 4 --------------------------------------------------------------------------------------

    def repair_lp(self) -> None:
        if self.relaxed is None:
            return
        self.supports.append(self.relaxed.columns[self.relaxed.fraction > 1e-9])
        t = time.perf_counter()
        self.candidates["lp_repair"] = _repair(self.problem, self.relaxed.columns,
                                               self.relaxed.fraction)
        self.lp_stats["repair_seconds"] = seconds_since(t)

    # 5 --------------------------------------------------------------------------------------

    def polish(self, best: Ledger) -> dict:
        """The integer problem itself over the pairs the LP and the answer use (polish.py)."""
        supports = np.concatenate(self.supports) if self.supports else np.zeros(0, np.int64)
        return polish(best, supports, density_order(self.problem),
                      self.budget.seconds_left(self.options.after_polish),
                      widen=not self.large,
                      one_lane_columns=self.options.polish_one_lane_columns)

    # 6 --------------------------------------------------------------------------------------

    def round_and_cheapen(self, best: Ledger) -> None:
        round_grants(best)
        # Cheaper offers with room left take over grants (same quantities), then the exact
        # check runs again on the moved numbers.
        before = best.objective()
        kept = [(dict(g), w) for g, w in zip(best.grants, best.whole)]
        cheapen(best, density_order(self.problem))
        round_grants(best)
        if best.objective() < before - 1e-9:  # the exact check took something back: undo
            for r, (grants, whole) in enumerate(kept):
                best.revoke(r)
                if grants:
                    best.commit(r, list(grants.items()), whole=whole)

    def result(self, name: str, best: Ledger, polish_stats: dict) -> Result:
        objective = best.objective()
        result_stats = {
            **self.stats,
            "method": name,
            "solve_seconds": seconds_since(self.started),
            "objective": objective,
            "bound": self.bound,
            "gap": _gap(objective, self.bound),
            "candidates": {k: v.objective() for k, v in sorted(self.candidates.items())},
            "lp": self.lp_stats,
            "polish": polish_stats,
            "time_limit": self.time_limit,
        }
        return _result(best, objective, result_stats)


def lp_optimum(instance: Instance, plain: bool = False,
               options: EngineOptions = DEFAULT_OPTIONS) -> dict:
    """The LP relaxation solved to optimality with no time limit: the benchmark's reference,
    which the engine's own bound (found under its time limit) can only lie above.

    Up to `options.whole_lp_max_pairs` from the weight-per-unit greedy answer; above, from the
    market blocks' answer (no deadline: ≈ 16 s at 100k × 10k), then the whole LP by column
    generation (≈ 17 s more). `plain` drops the viable-pair tightening: every compatible pair
    may carry a fraction, as in the textbook relaxation (weaker: 7664.35 against 7629.66 on
    the 10k instance). Returns the LP's value, its dual bound (equal up to the stopping
    tolerance) and the seconds taken."""
    started = time.perf_counter()
    problem = build_problem(instance)
    if plain:
        problem = dataclasses.replace(problem, pair_viable=np.ones(problem.n_pairs, dtype=bool))
    if problem.n_pairs == 0:
        return {"objective": 0.0, "bound": 0.0, "status": "Optimal", "seconds": seconds_since(started)}
    if problem.n_pairs > options.whole_lp_max_pairs:
        flow = batched_flow(problem, options.flow_batches)
        market = market_blocks(problem, flow.pairs, flow.amounts, flow.offer_price,
                               flow.group_price, None, options)
        used = market.fraction > 1e-12
        pairs = market.columns[used]
        amounts = market.fraction[used] * problem.req_qty[problem.pair_req[pairs]]
    else:
        pairs, amounts = _greedy_ledger(problem, density_order(problem)).held()
    relaxation = solve_relaxation(
        problem, Holdings.none(problem), np.concatenate([pairs, _cheapest_pairs(problem, 1)]),
        start=(pairs, amounts), max_rounds=1000, gain_tolerance=1e-9,
    )
    return {
        "objective": relaxation.lp_objective,
        "bound": min(dual_bound(problem, relaxation.duals), _trivial_bound(problem)),
        "status": relaxation.status,
        "seconds": seconds_since(started),
    }


def mip_optimum(instance: Instance, time_limit: float | None,
                max_pairs: int | None = None) -> dict | None:
    """The exact MIP's answer and dual bound (`polish.exact`), or None above `max_pairs`."""
    problem = build_problem(instance)
    if max_pairs is not None and problem.n_pairs > max_pairs:
        return None
    return exact_mip(problem, time_limit)


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
        "solve_seconds": seconds_since(started),
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


__all__ = ["greedy", "lp_optimum", "mip_optimum", "solve"]
