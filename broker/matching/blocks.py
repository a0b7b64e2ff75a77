"""The LP relaxation in pieces: whole, per kind on two threads, and in market blocks of whole
startups (the engine's phase 3, `engine._Solve.relax`).

Each returns a `Relaxed`: the LP's columns and their fractions, a bound valid for the whole
problem (every viable pair priced) and its stats.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from broker.resources import KIND_NAMES

from .flow import budget_dual_candidates
from .options import DEFAULT_OPTIONS, EngineOptions, seconds_since
from .problem import Problem, restrict_to_kind, restrict_to_requests
from .relaxation import (
    Holdings,
    dual_bound,
    lagrangian_bound,
    primary_objective,
    solve_relaxation,
)


@dataclass
class Relaxed:
    columns: np.ndarray
    fraction: np.ndarray
    bound: float
    stats: dict


def relax_whole(
    problem: Problem, initial: np.ndarray, time_limit: float | None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> Relaxed:
    """One LP over every kind: exact when budgets tie kinds together."""
    relaxation = solve_relaxation(
        problem, Holdings.none(problem), initial, time_limit=time_limit, start=start
    )
    return Relaxed(
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


def relax_blocks(
    problem: Problem, initial: np.ndarray, time_limit: float | None,
    start: tuple[np.ndarray, np.ndarray],
) -> Relaxed:
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
              amounts_of * problem.pair_price[pairs_of])
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
    block_seconds = seconds_since(started)

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
                     stage="blocks", seconds=seconds_since(started))
        return Relaxed(block_columns, block_fraction, block_bound, stats)

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
        seconds=seconds_since(started),
    )
    if joint_objective + 1e-9 < stats["block_objective"]:
        # Cut short before it caught up with its own start: the blocks' answer is better.
        return Relaxed(block_columns, block_fraction, min(block_bound, joint_bound), stats)
    return Relaxed(relaxation.columns, relaxation.fraction, min(block_bound, joint_bound), stats)


def market_blocks(
    problem: Problem, start_pairs: np.ndarray, start_amounts: np.ndarray,
    offer_price: np.ndarray, group_price: np.ndarray, deadline: float | None,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> Relaxed:
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
    n_blocks = int(max(2, min(64, np.ceil(viable.sum() / options.block_pairs))))
    pairs_now, amounts_now = start_pairs, start_amounts
    rounds: list[dict] = []
    duals: list[tuple] = []
    for k in range(options.market_rounds):
        if deadline is not None:
            # Another round if there is a second left: its blocks, cut short, still only
            # add (a full round from round 1's answer takes about half round 1's time).
            needed = 0.05 if not rounds else 1.0
            if deadline - time.perf_counter() < needed:
                break
        req_block = _partition(problem, per_startup, n_blocks, shuffle=k % 2 == 1)
        columns, fraction, round_duals, info = _solve_blocks(
            problem, req_block, n_blocks, pairs_now, amounts_now, deadline, options)
        if not duals or info["status"] == "Optimal":  # later rounds' duals only if exact
            duals.append(round_duals)
        used = fraction > 1e-12
        pairs_now = columns[used]
        amounts_now = fraction[used] * problem.req_qty[problem.pair_req[pairs_now]]
        info["objective"] = round(primary_objective(problem, columns, fraction), 6)
        info["seconds"] = seconds_since(started)
        rounds.append(info)
        if info["blocks_run"] < n_blocks:  # the clock stopped this round
            break

    stats = {"status": rounds[0]["status"] if rounds else "Not run: time limit",
             "blocks": n_blocks, "rounds": rounds}
    if not duals:
        return Relaxed(start_pairs, start_amounts / problem.req_qty[problem.pair_req[start_pairs]],
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
    stats.update(bound=round(bound, 6), bound_seconds=seconds_since(t), seconds=seconds_since(started),
                 objective=rounds[-1]["objective"])
    return Relaxed(pairs_now, amounts_now / problem.req_qty[problem.pair_req[pairs_now]],
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
    options: EngineOptions,
) -> tuple[np.ndarray, np.ndarray, tuple, dict]:
    """One round of `market_blocks`: the blocks' LPs from this start, on two threads."""
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
                [local, np.flatnonzero((rank < options.initial_cheapest) & sub.pair_viable)])
            share_of_time = None
            if deadline is not None:
                # This block and half of those waiting share what is left: a block's last
                # seconds of simplex add little (round 1 at 100k: 94820 after ≈ 7.3 s, 94823
                # after ≈ 10 s), time the next round uses better (≈ +0.3%).
                share_of_time = max(0.01, (deadline - time.perf_counter()) / (1 + waiting / 2))
            relaxation = solve_relaxation(sub, Holdings.none(sub), initial,
                                          time_limit=share_of_time,
                                          start=(local, start_amounts[mine]),
                                          gain_tolerance=options.block_gain_tolerance)
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
        "block_seconds": seconds_since(started),
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
    cheapest[has_pair] = problem.pair_price[problem.req_ptr[:-1][has_pair]]
    cost = np.zeros((n_kinds, n_startups))
    np.add.at(cost, (problem.req_kind, problem.req_startup), problem.req_qty * cheapest)
    total = cost.sum(axis=0)
    share = np.where(total > 0, cost / np.where(total > 0, total, 1.0), 1.0 / n_kinds)
    budget = problem.startup_budget[None, :]
    finite = np.isfinite(budget)
    rest = np.maximum(np.where(finite, budget, 0.0) - spend.sum(axis=0, keepdims=True), 0.0)
    return np.where(finite, spend + share * rest, np.inf)


__all__ = ["Relaxed", "market_blocks", "relax_blocks", "relax_whole"]
