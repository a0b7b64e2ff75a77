"""The linear relaxation of the matching problem, solved with HiGHS, and its honest bound.

Variables are fractions f = x / quantity of a request served by an offer, so objective
coefficients are the weights themselves (order 1) instead of weight / quantity, which spans
many orders of magnitude and would drown the tie-breaks in the solver's tolerances.

    max  Σ w_r f_ro  (+ tiny tie-break terms)
    s.t. Σ_o f_ro ≤ 1                            request r             dual μ_r
         Σ_r q_r f_ro ≤ available_o             offer o               dual π_o
         Σ_{r in g} q_r f_ro ≤ share_cap × supply  (startup, kind) g  dual σ_g
         Σ_{r of s} q_r p_o f_ro ≤ budget_s       startup s             dual λ_s
         f ≥ 0

Why this is a relaxation of the real problem: a minimum only removes points (x = 0 or
x ≥ min, both inside 0 ≤ x ≤ q), and an indivisible grant x_ro = q_r z_ro with binary z and
Σ z ≤ 1 lies inside 0 ≤ f, Σ f ≤ 1. So the relaxation's optimum bounds every feasible
answer, and by weak duality so does the dual objective of *any* nonnegative (π, σ, λ) once
each μ_r is raised to cover every compatible pair — which `dual_bound` does over all pairs,
not only the columns the LP saw. That is what lets the solver prune columns and still report
a bound on the full problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .problem import Problem

# Tie-breaks ride on the objective with coefficients far below any weight difference that
# matters: at most this share of the smallest weight, per unit fraction.
_PRICE_TIE = 1e-4
_SENIORITY_TIE = 1e-5


@dataclass
class Duals:
    offer: np.ndarray  # π ≥ 0 per offer
    group: np.ndarray  # σ ≥ 0 per (startup, kind) group
    budget: np.ndarray  # λ ≥ 0 per startup


@dataclass
class Relaxation:
    columns: np.ndarray  # pair indices the LP had
    fraction: np.ndarray  # f per column
    duals: Duals
    lp_objective: float  # primary objective of the LP's own solution
    status: str
    iterations: int
    rounds: int
    seconds: float


def binding_groups(problem: Problem) -> np.ndarray:
    """(startup, kind) groups whose requests together could exceed the share cap."""
    n_groups = len(problem.group_cap)
    asked = np.bincount(problem.req_group, weights=problem.req_qty, minlength=n_groups)
    return np.flatnonzero(asked > problem.group_cap + 1e-9)


def binding_budgets(problem: Problem) -> np.ndarray:
    """Startups whose requests, at the dearest compatible price, could exceed their budget."""
    n_startups = len(problem.startup_budget)
    if problem.n_pairs == 0:
        return np.zeros(0, dtype=np.int64)
    dearest = np.zeros(problem.n_requests)
    np.maximum.at(dearest, problem.pair_req, problem.off_price[problem.pair_off])
    spend = np.bincount(
        problem.req_startup, weights=problem.req_qty * dearest, minlength=n_startups
    )
    return np.flatnonzero(spend > problem.startup_budget + 1e-9)


def column_costs(problem: Problem, pairs: np.ndarray) -> np.ndarray:
    """Objective coefficient per column (to maximise): weight plus the tie-break nudges."""
    req = problem.pair_req[pairs]
    off = problem.pair_off[pairs]
    w_min = float(problem.req_weight.min()) if problem.n_requests else 1.0
    price_scale = float(problem.off_price.max()) if problem.n_offers else 0.0
    price_term = (
        _PRICE_TIE * w_min * problem.off_price[off] / price_scale if price_scale > 0 else 0.0
    )
    n = max(problem.n_requests, 1)
    seniority_term = _SENIORITY_TIE * w_min * (1.0 - problem.req_seniority[req] / n)
    return problem.req_weight[req] - price_term + seniority_term


def dual_bound(problem: Problem, duals: Duals) -> float:
    """An upper bound on the optimum of the full problem from any nonnegative duals."""
    pi = np.maximum(duals.offer, 0.0)
    sigma = np.maximum(duals.group, 0.0)
    lam = np.maximum(duals.budget, 0.0)
    req, off = problem.pair_req, problem.pair_off
    q = problem.req_qty[req]
    reduced = problem.req_weight[req] - q * (
        pi[off] + sigma[problem.req_group[req]] + lam[problem.req_startup[req]] * problem.off_price[off]
    )
    mu = np.zeros(problem.n_requests)
    np.maximum.at(mu, req, reduced)
    group_cap = np.where(np.isfinite(problem.group_cap), problem.group_cap, 0.0)
    budget = np.where(np.isfinite(problem.startup_budget), problem.startup_budget, 0.0)
    # An infinite cap or budget has no row, so its dual is 0 by construction (checked here so
    # that a wrong dual can't be hidden by 0 × inf).
    assert not np.any(sigma[~np.isfinite(problem.group_cap)] > 0)
    assert not np.any(lam[~np.isfinite(problem.startup_budget)] > 0)
    return float(
        mu.sum() + (problem.off_cap * pi).sum() + (group_cap * sigma).sum() + (budget * lam).sum()
    )


def reduced_costs(problem: Problem, duals: Duals, request_dual: np.ndarray) -> np.ndarray:
    """Per pair: how much the LP objective would gain per unit fraction on that column."""
    req, off = problem.pair_req, problem.pair_off
    q = problem.req_qty[req]
    return column_costs(problem, np.arange(problem.n_pairs)) - request_dual[req] - q * (
        duals.offer[off]
        + duals.group[problem.req_group[req]]
        + duals.budget[problem.req_startup[req]] * problem.off_price[off]
    )


class RelaxationModel:
    """A HiGHS model over a growing set of columns, re-solved warm after each addition."""

    def __init__(self, problem: Problem, threads: int = 1) -> None:
        import highspy  # heavy: loaded only when a solve actually needs it

        self.problem = problem
        self.groups = binding_groups(problem)
        self.budgets = binding_budgets(problem)
        self.group_row = np.full(len(problem.group_cap), -1, dtype=np.int64)
        self.budget_row = np.full(len(problem.startup_budget), -1, dtype=np.int64)
        n_req, n_off = problem.n_requests, problem.n_offers
        self.group_row[self.groups] = n_req + n_off + np.arange(len(self.groups))
        self.budget_row[self.budgets] = n_req + n_off + len(self.groups) + np.arange(len(self.budgets))
        self.n_rows = n_req + n_off + len(self.groups) + len(self.budgets)

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", threads)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("presolve", "off")  # presolve would be redone on every warm re-solve
        h.setOptionValue("solver", "simplex")
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        inf = highspy.kHighsInf
        upper = np.concatenate(
            [
                np.ones(n_req),
                problem.off_cap,
                problem.group_cap[self.groups],
                problem.startup_budget[self.budgets],
            ]
        )
        h.addRows(self.n_rows, np.full(self.n_rows, -inf), upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.highs = h
        self.columns = np.zeros(0, dtype=np.int64)
        self.iterations = 0

    def add_columns(self, pairs: np.ndarray) -> None:
        """Add these pairs as columns (each at most once)."""
        if len(pairs) == 0:
            return
        p = self.problem
        req = p.pair_req[pairs]
        off = p.pair_off[pairs]
        q = p.req_qty[req]
        g_rows = self.group_row[p.req_group[req]]
        b_rows = self.budget_row[p.req_startup[req]]
        entries_rows = np.stack([req, p.n_requests + off, g_rows, b_rows], axis=1)
        entries_vals = np.stack(
            [np.ones(len(pairs)), q, q, q * p.off_price[off]], axis=1
        )
        keep = entries_rows >= 0
        # A zero price puts no load on the budget row.
        keep[:, 3] &= entries_vals[:, 3] > 0
        counts = keep.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        index = entries_rows[keep].astype(np.int32)
        value = entries_vals[keep]
        self.highs.addCols(
            len(pairs),
            column_costs(p, pairs),
            np.zeros(len(pairs)),
            np.full(len(pairs), np.inf),
            int(len(index)),
            starts,
            index,
            value,
        )
        self.columns = np.concatenate([self.columns, pairs])

    def solve(self, time_limit: float | None) -> tuple[str, np.ndarray, np.ndarray, Duals]:
        """Run the simplex; return status, column fractions, request duals and the other duals."""
        h = self.highs
        if time_limit is not None:
            h.setOptionValue("time_limit", max(0.01, float(time_limit)))
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        self.iterations = int(h.getInfo().simplex_iteration_count)
        solution = h.getSolution()
        p = self.problem
        fraction = np.asarray(solution.col_value, dtype=float)
        row_dual = np.asarray(solution.row_dual, dtype=float)
        # For a maximisation HiGHS reports a binding ≤ row's dual as ≥ 0, our price; clipping
        # only removes round-off, and the bound stays valid for any nonnegative duals.
        row_dual = np.maximum(row_dual, 0.0) if row_dual.size else np.zeros(self.n_rows)
        n_req, n_off = p.n_requests, p.n_offers
        request_dual = row_dual[:n_req]
        duals = Duals(
            offer=row_dual[n_req : n_req + n_off].copy(),
            group=np.zeros(len(p.group_cap)),
            budget=np.zeros(len(p.startup_budget)),
        )
        duals.group[self.groups] = row_dual[n_req + n_off : n_req + n_off + len(self.groups)]
        duals.budget[self.budgets] = row_dual[n_req + n_off + len(self.groups) :]
        return status, np.clip(fraction, 0.0, 1.0), request_dual, duals


def primary_objective(problem: Problem, pairs: np.ndarray, fraction: np.ndarray) -> float:
    """Σ weight × fraction over these columns: the LP's value without the tie-breaks."""
    return float((problem.req_weight[problem.pair_req[pairs]] * fraction).sum())


def solve_relaxation(
    problem: Problem,
    initial: np.ndarray,
    *,
    time_limit: float | None = None,
    max_rounds: int = 30,
    per_request: int = 2,
) -> Relaxation:
    """Column generation from `initial` pairs until no column prices out (or time runs out)."""
    started = time.perf_counter()
    model = RelaxationModel(problem)
    model.add_columns(np.unique(initial))
    in_model = np.zeros(problem.n_pairs, dtype=bool)
    in_model[model.columns] = True
    rounds = 0
    iterations = 0
    while True:
        rounds += 1
        left = None if time_limit is None else time_limit - (time.perf_counter() - started)
        status, fraction, request_dual, duals = model.solve(left)
        iterations += model.iterations
        if status != "Optimal" or rounds >= max_rounds:
            break
        reduced = reduced_costs(problem, duals, request_dual)
        # Tolerance: a column must gain a visible amount to be worth another solve.
        candidates = np.flatnonzero((reduced > 1e-7) & ~in_model)
        if len(candidates) == 0:
            break
        # Per request, its best few candidates: enough to fix the prices without flooding.
        order = np.lexsort((-reduced[candidates], problem.pair_req[candidates]))
        candidates = candidates[order]
        req = problem.pair_req[candidates]
        first = np.searchsorted(req, req, side="left")
        rank = np.arange(len(candidates)) - first
        chosen = candidates[rank < per_request]
        model.add_columns(chosen)
        in_model[chosen] = True
    return Relaxation(
        columns=model.columns,
        fraction=fraction,
        duals=duals,
        lp_objective=primary_objective(problem, model.columns, fraction),
        status=status,
        iterations=iterations,
        rounds=rounds,
        seconds=time.perf_counter() - started,
    )
