"""The matching engine: LP relaxation with HiGHS, repaired into an integer-feasible answer.

    1. index the instance, list every compatible pair, mark the viable ones (problem.py)
    2. greedy answers: the staff's priority queue and weight-per-unit       (grants.py)
    3. up to 400k pairs: the LP relaxation by column generation, primal simplex started
       from the weight-per-unit greedy answer                               (relaxation.py)
       above: a batched max-flow greedy, then the LP in blocks of whole startups with the
       offers' capacity split between them, in rounds over different partitions, on two
       threads, from the flow's answer; the bound from the blocks' and the flow's duals;
       per-kind LP blocks too if much time is left                         (flow.py, here)
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from broker.resources import KIND_NAMES

from .explain import reasons
from .flow import batched_flow, budget_dual_candidates
from .grants import Ledger, cheapen, density_order, fill, priority_order
from .model import Allocation, Instance, Result
from .polish import exact as exact_mip
from .polish import polish
from .problem import Problem, build_problem, restrict_to_kind, restrict_to_requests
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
# Pairs per market block (`_market_blocks`): six blocks of ≈ 17k requests at 100k, ≈ 2.5 s
# of simplex each (see the table there).
_BLOCK_PAIRS = 256_000
# Rounds of market blocks at most (each over a different partition of the startups).
_MARKET_ROUNDS = 3
# A block's column generation stops once the columns it lacks could add less than this
# share of its objective (the bound prices every pair anyway, so this only costs answer).
_BLOCK_GAIN_TOLERANCE = 1e-6
# Share of the limit (or seconds per request, if more) kept back after the market blocks for
# the bound, the repair, the polish, rounding, moving to cheaper offers and reasons (at 100k
# requests: ≈ 0.4 + 1.3 + 4–5 + 2.7 s).
_POST_SHARE, _POST_BLOCK_SECONDS_PER_REQUEST = 0.1, 1.1e-4
# The same after the polish: rounding, moving to cheaper offers, reasons (≈ 2.7 s at 100k).
_POST_POLISH_SECONDS_PER_REQUEST = 4e-5
# Batches of the max-flow greedy whose prices give the bound above that size (≈ 0.4 s each at
# 1.5M pairs; more batches, tighter prices).
_FLOW_BATCHES = 24


def solve(instance: Instance, time_limit: float | None = None) -> Result:
    """The engine's answer: feasible, near-optimal, with its bound and gap in `stats`."""
    with _cyclic_gc_paused():
        return _solve(instance, time_limit)


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


def _solve(instance: Instance, time_limit: float | None) -> Result:
    started = time.perf_counter()
    problem = build_problem(instance)
    stats: dict = {"requests": problem.n_requests, "offers": problem.n_offers,
                   "compatible_pairs": problem.n_pairs}
    stats["build_seconds"] = _since(started)

    candidates: dict[str, Ledger] = {}
    t = time.perf_counter()
    candidates["greedy_priority"] = _greedy_ledger(problem, priority_order(problem))
    large = problem.n_pairs > _WHOLE_LP_MAX_PAIRS
    if not large or time_limit is None:
        # The LP's starting point; on the large path under a time limit it is only needed
        # if the per-kind blocks run (rarely: ≈ 1 s at 100k better spent on the LP blocks).
        candidates["greedy_density"] = _greedy_ledger(problem, density_order(problem))
    stats["greedy_seconds"] = _since(t)

    def lp_start() -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        if "greedy_density" not in candidates:
            candidates["greedy_density"] = _greedy_ledger(problem, density_order(problem))
        start = candidates["greedy_density"].held()
        initial = np.concatenate([
            start[0], candidates["greedy_priority"].held()[0],
            _cheapest_pairs(problem, _INITIAL_CHEAPEST),
        ])
        return start, initial

    bound = _trivial_bound(problem)
    lp_stats: dict = {"status": "skipped"}
    supports: list[np.ndarray] = []
    if problem.n_pairs:
        def left() -> float | None:
            # What the LP may use: the limit less a reserve for the repair, rounding and
            # reasons that follow it (a fifth of the limit, or more on a big instance).
            if time_limit is None:
                return None
            reserve = max(0.2 * time_limit, _POST_SECONDS_PER_REQUEST * problem.n_requests)
            return max(0.05, time_limit - reserve - (time.perf_counter() - started))

        # One LP over everything while HiGHS can finish it in time; beyond that, a batched
        # max flow, whose answer starts the LP in blocks of whole startups (`_market_blocks`:
        # their answer is repaired, their duals blended with the flow's prices give the
        # bound), then per-kind LP blocks if much time is left (see `_relax_blocks`).
        if not large:
            start, initial = lp_start()
            relaxed = _relax_whole(problem, initial, left(), start)
            bound = min(bound, relaxed.bound)
            lp_stats = relaxed.stats
        else:
            t = time.perf_counter()
            remaining = left()
            answer = batched_flow(problem, _FLOW_BATCHES,
                                  None if remaining is None else time.perf_counter() + remaining)
            flow_stats = {"batches": _FLOW_BATCHES, "complete": answer.complete,
                          "seconds": _since(t)}
            # The LP in blocks of whole startups, capacities split by the flow; the repair of
            # their answer together replaces the flow's own (a block that can't beat its
            # part of the flow keeps it).
            deadline = None
            if time_limit is not None:
                reserve = max(_POST_SHARE * time_limit,
                              _POST_BLOCK_SECONDS_PER_REQUEST * problem.n_requests)
                deadline = started + time_limit - reserve
            market = _market_blocks(problem, answer.pairs, answer.amounts,
                                    answer.offer_price, answer.group_price, deadline)
            bound = min(bound, market.bound)
            flow_stats["market"] = market.stats
            first = market.stats["rounds"][:1]
            if not first or first[0]["blocks_kept_start"] or first[0]["blocks_run"] < market.stats["blocks"]:
                # The flow's prices alone: a weaker bound than the blend once every block of
                # the first round has run (96798 against 95878 at 100k), but maybe not when
                # the clock stopped some before they could.
                flow_bound = lagrangian_bound(problem, answer.offer_price, answer.group_price,
                                              budget_dual_candidates(problem))
                bound = min(bound, flow_bound)
                flow_stats["bound"] = round(flow_bound, 6)
            t = time.perf_counter()
            candidates["block_repair"] = _repair(problem, market.columns, market.fraction)
            supports.append(market.columns[market.fraction > 1e-9])
            flow_stats["repair_seconds"] = _since(t)
            remaining = left()
            if remaining is None or remaining > _MIN_BLOCK_SECONDS:
                start, initial = lp_start()
                relaxed = _relax_blocks(problem, initial, remaining, start)
                bound = min(bound, relaxed.bound)
                lp_stats = relaxed.stats
            else:
                relaxed = None
                lp_stats = {"status": "skipped: no time left"}
            lp_stats["flow"] = flow_stats
        if relaxed is not None:
            supports.append(relaxed.columns[relaxed.fraction > 1e-9])
            t = time.perf_counter()
            candidates["lp_repair"] = _repair(problem, relaxed.columns, relaxed.fraction)
            lp_stats["repair_seconds"] = _since(t)

    name, best = _best(candidates)
    # The integer problem itself over the pairs the LP and the answer use (polish.py).
    polish_limit = None
    if time_limit is not None:
        reserve = max(_POST_SHARE * time_limit, _POST_POLISH_SECONDS_PER_REQUEST * problem.n_requests)
        polish_limit = max(0.0, time_limit - reserve - (time.perf_counter() - started))
    polish_stats = polish(best, np.concatenate(supports) if supports else np.zeros(0, np.int64),
                          density_order(problem), polish_limit, widen=not large)
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
        "polish": polish_stats,
        "time_limit": time_limit,
    }
    return _result(best, objective, result_stats)


def lp_optimum(instance: Instance, plain: bool = False) -> dict:
    """The LP relaxation solved to optimality with no time limit: the benchmark's reference,
    which the engine's own bound (found under its time limit) can only lie above.

    Up to `_WHOLE_LP_MAX_PAIRS` from the weight-per-unit greedy answer; above, from the
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
        return {"objective": 0.0, "bound": 0.0, "status": "Optimal", "seconds": _since(started)}
    if problem.n_pairs > _WHOLE_LP_MAX_PAIRS:
        flow = batched_flow(problem, _FLOW_BATCHES)
        market = _market_blocks(problem, flow.pairs, flow.amounts, flow.offer_price,
                                flow.group_price, None)
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
        "seconds": _since(started),
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
            "columns": len(relaxation.columns),
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


def _market_blocks(
    problem: Problem, start_pairs: np.ndarray, start_amounts: np.ndarray,
    offer_price: np.ndarray, group_price: np.ndarray, deadline: float | None,
    max_rounds: int = _MARKET_ROUNDS,
) -> _Relaxed:
    """The LP in independent blocks of whole startups, offers' capacity split between blocks,
    in rounds over different partitions (block-coordinate ascent on the full LP).

    The compatibility graph is one connected component per kind (every kind, on the generated
    100k instance), so components don't split it; but startups do: each block takes whole
    startups (so every share cap and budget lies inside one block, exactly), and each offer's
    capacity is split between blocks — what the current answer uses there, plus the rest in
    proportion to the block's compatible demand. The blocks' answers together are feasible
    for the full LP (the split capacities add up to the real ones), and each block's LP starts
    from its part of the current answer (primal simplex: a block cut short by the clock is
    never below it; if HiGHS hands back a worse point, the start is kept), so each round can
    only raise the objective. Round 1 starts from the max flow; round 2 re-partitions the
    startups (hashed order) and starts from round 1's answer, so capacity moves between
    startups that round 1 kept apart; round 3 uses round 1's partition again. Two threads
    (HiGHS releases the GIL) take blocks in a fixed order; results are combined in block
    order, so without a time limit the answer doesn't depend on the threads' timing.
    At 100k (1.5M pairs), round 1 from the 24-batch flow, no time limit:

        blocks    pairs each   LP seconds (2 threads)   blocks' LP    bound (blend)
          48         32k              7.5                 93348          96294
          24         64k              5.8                 93874          96147
          12        128k              6.4                 94375          95927
           6        256k              8.0                 94823          95878
           4        400k             10.2                 95024          95871
           2        800k             29.2                 95311          95873

    and six blocks for rounds 2 and 3: 95119 (+5.1 s), 95190 (+3.8 s). Larger blocks lose
    less to the capacity split; the LP optimum lies between 95311 and 95856.

    The bound: within a round, every share-cap and budget row lies in one block, so the
    blocks' σ and λ are one consistent set; only the offers' duals differ between blocks.
    Any nonnegative (π, σ, λ) give a valid bound on the LP over all viable pairs, hence on
    the problem (`lagrangian_bound`: every viable pair priced, so each μ_r covers every
    pair; each startup's budget dual the best of several candidates; weak duality). A blend
    of the blocks' median offer dual and the flow's prices does best (below).
    """
    started = time.perf_counter()
    n_startups = len(problem.startup_budget)
    viable = problem.pair_viable
    per_startup = np.bincount(problem.req_startup[problem.pair_req[viable]], minlength=n_startups)
    n_blocks = int(max(2, min(64, np.ceil(viable.sum() / _BLOCK_PAIRS))))
    pairs_now, amounts_now = start_pairs, start_amounts
    rounds: list[dict] = []
    duals: list[tuple] = []
    for k in range(max_rounds):
        if deadline is not None:
            # Another round if there is a second left: its blocks, cut short, still only
            # add (a full round from round 1's answer takes about half round 1's time).
            needed = 0.05 if not rounds else 1.0
            if deadline - time.perf_counter() < needed:
                break
        req_block = _partition(problem, per_startup, n_blocks, shuffle=k % 2 == 1)
        columns, fraction, round_duals, info = _solve_blocks(
            problem, req_block, n_blocks, pairs_now, amounts_now, deadline)
        if not duals or info["status"] == "Optimal":  # later rounds' duals only if exact
            duals.append(round_duals)
        used = fraction > 1e-12
        pairs_now = columns[used]
        amounts_now = fraction[used] * problem.req_qty[problem.pair_req[pairs_now]]
        info["objective"] = round(primary_objective(problem, columns, fraction), 6)
        info["seconds"] = _since(started)
        rounds.append(info)
        if info["blocks_run"] < n_blocks:  # the clock stopped this round
            break

    stats = {"status": rounds[0]["status"] if rounds else "Not run: time limit",
             "blocks": n_blocks, "rounds": rounds}
    if not duals:
        return _Relaxed(start_pairs, start_amounts / problem.req_qty[problem.pair_req[start_pairs]],
                        np.inf, stats)
    t = time.perf_counter()
    # Offer duals: 20% the flow's prices, 80% the median of the blocks' (round 1's; then
    # every full round's); share-cap duals: the latest full round's; budget duals: each
    # startup the best of every round's and a grid. On the 100k instance (6 blocks), with
    # round 1's duals: 95768 at 80%, 95878 at 50%, 95787 at 90%; both rounds' at 80%: 95709;
    # the flow's prices alone: 96798, the mean or the midrange instead of the median, the
    # flow's share-cap prices, or 40 projected subgradient steps from here: no better. (With
    # 24 smaller blocks 50% did best: the median of small blocks is noisier.)
    grid = budget_dual_candidates(problem)
    bounds = []
    for last in sorted({0, len(duals) - 1}):
        offer_duals = np.vstack([d[0] for d in duals[: last + 1]])
        group_dual = duals[last][1]
        budget_choices = np.vstack([d[2] for d in duals[: last + 1]] + [grid])
        pi = 0.2 * offer_price + 0.8 * np.median(offer_duals, axis=0)
        bounds.append(lagrangian_bound(problem, pi, group_dual, budget_choices))
    bound = min(bounds)
    stats.update(bound=round(bound, 6), bound_seconds=_since(t), seconds=_since(started),
                 objective=rounds[-1]["objective"])
    return _Relaxed(pairs_now, amounts_now / problem.req_qty[problem.pair_req[pairs_now]],
                    bound, stats)


def _partition(problem: Problem, per_startup: np.ndarray, n_blocks: int,
               shuffle: bool) -> np.ndarray:
    """Block per request: whole startups to the least loaded block (by pairs), largest first
    (ties: lowest index) or, with `shuffle`, in a hashed order. Fixed by the instance alone."""
    n_startups = len(per_startup)
    order = np.lexsort((np.arange(n_startups), -per_startup))
    if shuffle:
        order = np.argsort((np.arange(n_startups, dtype=np.uint64) * np.uint64(2654435761))
                           % np.uint64(2**32), kind="stable")
    block_of = np.zeros(n_startups, dtype=np.int64)
    load = np.zeros(n_blocks)
    for s in order.tolist():
        b = int(np.argmin(load))
        block_of[s] = b
        load[b] += per_startup[s]
    return block_of[problem.req_startup]


def _solve_blocks(
    problem: Problem, req_block: np.ndarray, n_blocks: int,
    start_pairs: np.ndarray, start_amounts: np.ndarray, deadline: float | None,
) -> tuple[np.ndarray, np.ndarray, tuple, dict]:
    """One round of `_market_blocks`: the blocks' LPs from this start, on two threads."""
    started = time.perf_counter()
    viable = problem.pair_viable
    start_block = req_block[problem.pair_req[start_pairs]]
    m = problem.n_offers
    use = np.bincount(start_block * m + problem.pair_off[start_pairs], weights=start_amounts,
                      minlength=n_blocks * m).reshape(n_blocks, m)
    pair_block = req_block[problem.pair_req]
    demand = np.bincount((pair_block * m + problem.pair_off)[viable],
                         weights=problem.req_qty[problem.pair_req[viable]],
                         minlength=n_blocks * m).reshape(n_blocks, m)
    # Each block's pairs (sorted, as the pair order is by request), cut from one stable sort.
    by_block = np.argsort(pair_block, kind="stable")
    block_ptr = np.searchsorted(pair_block[by_block], np.arange(n_blocks + 1))
    rest = np.maximum(problem.off_cap - use.sum(axis=0), 0.0)
    total = demand.sum(axis=0)
    share = np.where(total > 0, demand / np.where(total > 0, total, 1.0), 1.0 / n_blocks)
    # Never more than the offer holds, whatever float round-off does to the shares.
    capacity = np.minimum(use + share * rest, problem.off_cap[None, :])

    done: dict[int, tuple] = {}
    queue = list(range(n_blocks))  # taken in this order by whichever thread is free
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                if not queue:
                    return
                b = queue.pop(0)
                waiting = len(queue)
            requests = np.flatnonzero(req_block == b)
            if deadline is not None and time.perf_counter() > deadline - 0.05:
                done[b] = (requests, None, None)  # out of time: the start stands
                continue
            sub, pairs = restrict_to_requests(problem, requests, capacity[b],
                                              by_block[block_ptr[b]:block_ptr[b + 1]])
            mine = start_block == b
            local = np.searchsorted(pairs, start_pairs[mine])
            rank = np.arange(len(pairs)) - sub.req_ptr[sub.pair_req]
            initial = np.concatenate(
                [local, np.flatnonzero((rank < _INITIAL_CHEAPEST) & sub.pair_viable)])
            share_of_time = None
            if deadline is not None:
                # This block and half of those waiting share what is left: a block's last
                # seconds of simplex add little (round 1 at 100k: 94820 after ≈ 7.3 s, 94823
                # after ≈ 10 s), time the next round uses better (≈ +0.3%).
                share_of_time = max(0.01, (deadline - time.perf_counter()) / (1 + waiting / 2))
            relaxation = solve_relaxation(sub, Holdings.none(sub), initial,
                                          time_limit=share_of_time,
                                          start=(local, start_amounts[mine]),
                                          gain_tolerance=_BLOCK_GAIN_TOLERANCE)
            done[b] = (requests, pairs, relaxation)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    columns, fractions = [], []
    offer_duals = np.zeros((n_blocks, m))
    group_dual = np.zeros(len(problem.group_cap))
    budget_dual = np.zeros(len(problem.startup_budget))
    statuses, kept_start = [], 0
    for b in range(n_blocks):
        requests, pairs, relaxation = done[b]
        mine = start_block == b
        start_fraction = start_amounts[mine] / problem.req_qty[problem.pair_req[start_pairs[mine]]]
        if relaxation is None or relaxation.lp_objective < primary_objective(
            problem, start_pairs[mine], start_fraction
        ):
            columns.append(start_pairs[mine])
            fractions.append(start_fraction)
            kept_start += 1
            if relaxation is None:
                statuses.append("Not run: time limit")
                continue
        else:
            columns.append(pairs[relaxation.columns])
            fractions.append(relaxation.fraction)
        statuses.append(relaxation.status)
        offer_duals[b] = relaxation.duals.offer
        group_dual[np.unique(problem.req_group[requests])] = relaxation.duals.group
        startups = np.unique(problem.req_startup[requests])
        budget_dual[startups] = relaxation.duals.budget[startups]
    info = {
        "status": "Optimal" if set(statuses) <= {"Optimal"} else "Stopped early",
        "statuses": sorted(set(statuses)),
        "blocks_run": sum(status != "Not run: time limit" for status in statuses),
        "blocks_kept_start": kept_start,
        "block_seconds": _since(started),
    }
    return (np.concatenate(columns), np.concatenate(fractions),
            (offer_duals, group_dual, budget_dual), info)


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


__all__ = ["greedy", "lp_optimum", "mip_optimum", "solve"]
