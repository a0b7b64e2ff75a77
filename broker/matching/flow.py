"""Prices and a fractional answer without an LP solver, for instances too big for HiGHS in time.

Without budgets, the LP relaxation is a flow problem: source → (startup, kind) group (share
cap) → request (quantity) → compatible offer → sink (available), with value only on the
request nodes. Its feasible fulfilment vectors form a polymatroid, so serving requests in
order of weight per unit, each as much as augmenting paths (rerouting earlier grants) allow,
is optimal for it. Here that greedy runs in `n_batches` batches of requests, each one max
flow (scipy's Dinic, in C) on the residual graph, from which the earlier batches' source arcs
are left out so nothing already served is given back.

Two things come out:
  - the flow itself: LP-feasible for capacities and share caps, and roughly within budgets
    (`_budget_aware`); the ledger that repairs it enforces every rule;
  - prices: an offer's price is the weight per unit of the batch during which it could no
    longer reach the sink, a group's the same for the batch that used up its cap.
Prices are only a guess at good duals: `lagrangian_bound` turns *any* nonnegative prices
into a valid bound by pricing every compatible pair, so the bound never depends on how good
this guess is — only its tightness does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import Problem
from .relaxation import binding_budgets

# Quantities are stored to a tenth of a unit at most in the district's data; the max flow
# needs integers, so capacities are floored (never more than there is) at this scale.
_SCALE = 10
_BIG = 2**30


@dataclass
class FlowAnswer:
    pairs: np.ndarray  # pair indices with flow
    amounts: np.ndarray  # units on each
    offer_price: np.ndarray  # per offer, value per unit
    group_price: np.ndarray  # per (startup, kind) group
    complete: bool  # False when the deadline regrouped the last batches


def _budget_aware(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Quantities and arcs for the flow that respect budgets roughly (the max flow knows no
    prices): a startup whose budget can bind only gets arcs to each request's cheapest viable
    offers, and each request only what the budget left pays for at that price, requests in
    weight-per-unit order. On the 10k instance this lifts the repaired flow by 2.4% (the flow
    had sent budget-bound startups to dear offers, which the repair then had to cut)."""
    n = problem.n_requests
    viable = problem.pair_viable
    cheapest = np.full(n, np.inf)
    np.minimum.at(cheapest, problem.pair_req[viable], problem.pair_price[viable])
    cheapest = np.where(np.isfinite(cheapest), cheapest, 0.0)
    binding = np.zeros(len(problem.startup_budget), dtype=bool)
    binding[binding_budgets(problem)] = True
    arcs = viable & (
        ~binding[problem.req_startup[problem.pair_req]]
        | (problem.pair_price <= cheapest[problem.pair_req])
    )
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((problem.req_seniority, -problem.req_value))] = np.arange(n)
    order = np.lexsort((rank, problem.req_startup))
    startup = problem.req_startup[order]
    price = cheapest[order]
    asked = problem.req_qty[order]
    cost = asked * price
    cum = np.cumsum(cost)
    first = np.searchsorted(startup, startup, side="left")
    before = cum - cost - np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
    budget = problem.startup_budget[startup]
    paid = price > 0
    afford = np.where(
        paid, np.clip((budget - before) / np.where(paid, price, 1.0), 0.0, asked), asked
    )
    quantity = np.empty(n)
    quantity[order] = np.where(binding[startup], afford, asked)
    return quantity, arcs


def batched_flow(problem: Problem, n_batches: int = 12, deadline: float | None = None) -> FlowAnswer:
    """The batched greedy. With a `deadline` (a `time.perf_counter()` reading), the requests
    left are regrouped into as many batches as still fit at the pace so far: coarser prices, a
    looser (still valid) bound, but the clock is kept."""
    import time

    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    quantity, arcs = _budget_aware(problem)
    viable = np.flatnonzero(arcs)
    req = problem.pair_req[viable]
    off = problem.pair_off[viable]
    n, m, ng = problem.n_requests, problem.n_offers, len(problem.group_cap)
    group_node = n + m
    source, sink = n + m + ng, n + m + ng + 1
    size = sink + 1
    qty = np.minimum(np.floor(quantity * _SCALE + 1e-6), _BIG).astype(np.int64)
    cap_left = np.minimum(np.floor(problem.off_cap * _SCALE + 1e-6), _BIG).astype(np.int64)
    group_left = np.where(
        np.isfinite(problem.group_cap),
        np.minimum(np.floor(problem.group_cap * _SCALE + 1e-6), _BIG), _BIG,
    ).astype(np.int64)
    value = problem.req_value
    order = np.lexsort((problem.req_seniority, -value))
    has_pair = np.bincount(req, minlength=n) > 0
    order = order[has_pair[order]]
    flow = np.zeros(len(viable), dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    alive = np.ones(m, dtype=bool)
    offer_price = np.zeros(m)
    group_price = np.zeros(ng)
    group_priced = np.zeros(ng, dtype=bool)
    batches = [b for b in np.array_split(order, max(1, n_batches)) if len(b)]
    complete = True
    began, done_batches = time.perf_counter(), 0
    while batches:
        if deadline is not None and done_batches and len(batches) > 1:
            # As many of the remaining batches as the clock allows at the pace so far; the
            # rest of the requests are spread over those (coarser prices near the end).
            pace = (time.perf_counter() - began) / done_batches
            fit = int((deadline - time.perf_counter()) // pace)
            if fit < len(batches):
                batches = [b for b in np.array_split(np.concatenate(batches), max(1, fit)) if len(b)]
                complete = False
        batch = batches.pop(0)
        done_batches += 1
        current = np.zeros(n, dtype=bool)
        current[batch] = True
        active = (done[req] | current[req]) & alive[off]
        carrying = active & (flow > 0)
        groups = np.unique(problem.req_group[batch])
        rows = np.concatenate([
            np.full(len(groups), source), group_node + problem.req_group[batch], req[active],
            n + off[carrying], n + np.arange(m),
        ])
        cols = np.concatenate([
            group_node + groups, batch, n + off[active], req[carrying], np.full(m, sink),
        ])
        caps = np.concatenate([
            group_left[groups], qty[batch], np.full(int(active.sum()), _BIG), flow[carrying],
            cap_left,
        ])
        keep = caps > 0
        graph = csr_array(
            (caps[keep].astype(np.int32), (rows[keep], cols[keep])), shape=(size, size)
        )
        result = maximum_flow(graph, source, sink)
        moved = result.flow
        on = np.flatnonzero(active)
        flow[on] += np.rint(_entries(moved, req[on], n + off[on])).astype(np.int64)
        cap_left -= np.rint(_entries(moved, n + np.arange(m), np.full(m, sink))).astype(np.int64)
        group_left[groups] -= np.rint(
            _entries(moved, np.full(len(groups), source), group_node + groups)
        ).astype(np.int64)
        done |= current
        level = float(value[batch].min())
        # Offers that can no longer reach the sink never will again (what they could reach
        # is all full and stays so): they are priced at this batch's level and dropped.
        live = done[req] & alive[off]
        carrying = live & (flow > 0)
        free = np.flatnonzero(cap_left > 0)
        back_rows = np.concatenate([n + off[live], req[carrying], np.full(len(free), sink)])
        back_cols = np.concatenate([req[live], n + off[carrying], n + free])
        reverse = csr_array(
            (np.ones(len(back_rows), dtype=np.int8), (back_rows, back_cols)), shape=(size, size)
        )
        reach = np.zeros(size, dtype=bool)
        reach[breadth_first_order(reverse, sink, directed=True, return_predecessors=False)] = True
        dying = alive & ~reach[n : n + m]
        offer_price[dying] = level
        alive &= ~dying
        full = (group_left <= 0) & ~group_priced
        group_price[full] = level
        group_priced |= full
    used = flow > 0
    return FlowAnswer(
        pairs=viable[used],
        amounts=flow[used] / _SCALE,
        offer_price=offer_price,
        group_price=group_price,
        complete=complete,
    )


def _entries(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] as a flat float array. (Fancy indexing a sparse array can
    hand back a sparse result instead of a dense one, e.g. for a single index in some scipy
    versions; `np.asarray` of that is an object scalar, not the numbers.)"""
    if len(rows) == 0:
        return np.zeros(0)
    out = matrix[rows, cols]
    if hasattr(out, "toarray"):
        out = out.toarray()
    return np.asarray(out, dtype=float).ravel()


def budget_dual_candidates(problem: Problem, steps: int = 24) -> np.ndarray:
    """Candidate budget duals per startup for `lagrangian_bound` (which keeps, per startup,
    whichever candidate gives the lowest bound): 0 and a geometric grid up to the most any of
    its requests earns per unit of money."""
    viable = problem.pair_viable
    req = problem.pair_req[viable]
    per_money = np.zeros(len(problem.startup_budget))
    price = problem.pair_price[viable]
    paid = price > 0
    np.maximum.at(per_money, problem.req_startup[req[paid]], problem.req_value[req[paid]] / price[paid])
    has_budget = np.isfinite(problem.startup_budget)
    grid = [np.where(has_budget, per_money * step, 0.0) for step in np.geomspace(1e-3, 1.0, steps)]
    return np.vstack([np.zeros(len(problem.startup_budget))] + grid)
