"""The large path's LP in blocks of whole startups (`blocks.market_blocks`) and the bound it
reports; the budget shortcut in `lagrangian_bound`."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from broker.matching.blocks import market_blocks
from broker.matching.flow import batched_flow, budget_dual_candidates
from broker.matching.generator import generate
from broker.matching.options import EngineOptions
from broker.matching.problem import build_problem, restrict_to_requests
from broker.matching.relaxation import _request_max, lagrangian_bound

from .exact import optimum


def _lp_violations(problem, pairs, fraction, tol=1e-6):
    """What a fractional answer breaks among the LP's rows (empty: LP-feasible)."""
    req, off = problem.pair_req[pairs], problem.pair_off[pairs]
    amount = fraction * problem.req_qty[req]
    bad = []
    if np.any(fraction < -tol):
        bad.append("negative")
    served = np.bincount(req, weights=fraction, minlength=problem.n_requests)
    if np.any(served > 1 + tol):
        bad.append("request")
    used = np.bincount(off, weights=amount, minlength=problem.n_offers)
    if np.any(used > problem.off_cap * (1 + tol) + tol):
        bad.append("offer")
    group = np.bincount(problem.req_group[req], weights=amount, minlength=len(problem.group_cap))
    if np.any(group > problem.group_cap * (1 + tol) + tol):
        bad.append("share cap")
    spend = np.bincount(problem.req_startup[req], weights=amount * problem.off_price[off],
                        minlength=len(problem.startup_budget))
    if np.any(spend > problem.startup_budget * (1 + tol) + tol):
        bad.append("budget")
    if not problem.pair_viable[pairs[fraction > tol]].all():
        bad.append("not viable")
    return bad


@pytest.mark.parametrize("seed", range(3))
def test_market_blocks_are_lp_feasible_improve_each_round_and_bound_the_optimum(seed):
    inst = generate(120, 20, seed)
    problem = build_problem(inst)
    flow = batched_flow(problem, 6)
    market = market_blocks(problem, flow.pairs, flow.amounts, flow.offer_price,
                           flow.group_price, None,
                           EngineOptions(block_pairs=15))  # several blocks on a small instance
    assert market.stats["blocks"] > 2
    assert _lp_violations(problem, market.columns, market.fraction) == []
    objectives = [r["objective"] for r in market.stats["rounds"]]
    start = float((problem.req_weight[problem.pair_req[flow.pairs]]
                   * flow.amounts / problem.req_qty[problem.pair_req[flow.pairs]]).sum())
    assert objectives[0] >= start - 1e-6
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(objectives))
    # A valid bound on the LP (so on the LP's own answer) and on the exact optimum.
    assert market.bound >= objectives[-1] - 1e-6
    assert market.bound >= optimum(inst) - 1e-6


def test_market_blocks_out_of_time_keep_the_start():
    inst = generate(200, 30, 4)
    problem = build_problem(inst)
    flow = batched_flow(problem, 6)
    market = market_blocks(problem, flow.pairs, flow.amounts, flow.offer_price,
                           flow.group_price, deadline=time.perf_counter() - 1.0)
    assert market.stats["rounds"] == []
    assert market.bound == np.inf
    assert _lp_violations(problem, market.columns, market.fraction) == []


def test_lagrangian_bound_budget_shortcut_matches_trying_every_startup():
    inst = generate(300, 40, 5)
    problem = build_problem(inst)
    rng = np.random.default_rng(0)
    viable = problem.pair_viable
    req, off = problem.pair_req[viable], problem.pair_off[viable]
    q = problem.req_qty[req]
    has_budget = np.isfinite(problem.startup_budget)
    budget = np.where(has_budget, problem.startup_budget, 0.0)
    for _ in range(5):
        pi = rng.uniform(0, 0.01, problem.n_offers) * (rng.random(problem.n_offers) < 0.5)
        sigma = np.zeros(len(problem.group_cap))
        choices = np.vstack([budget_dual_candidates(problem),
                             rng.uniform(0, 1e-3, (3, len(problem.startup_budget)))])
        # The plain definition: every startup takes its best candidate.
        base = problem.req_weight[req] - q * pi[off]
        load = q * problem.off_price[off]
        best = np.full(len(budget), np.inf)
        for choice in choices:
            lam = np.where(has_budget, choice, 0.0)
            mu = np.zeros(problem.n_requests)
            np.maximum.at(mu, req, base - lam[problem.req_startup[req]] * load)
            term = lam * budget + np.bincount(problem.req_startup, weights=mu,
                                              minlength=len(budget))
            best = np.minimum(best, term)
        plain = best.sum() + (problem.off_cap * pi).sum()
        assert lagrangian_bound(problem, pi, sigma, choices) == pytest.approx(plain, rel=1e-12)


def test_request_max_and_restrict_to_requests():
    req = np.array([0, 0, 2, 2, 2, 5])
    value = np.array([-1.0, -2.0, 3.0, 1.0, 4.0, 0.5])
    assert _request_max(req, value, 7).tolist() == [0.0, 0.0, 4.0, 0.0, 0.0, 0.5, 0.0]
    problem = build_problem(generate(50, 12, 1))
    requests = np.arange(0, problem.n_requests, 3)
    sub, pairs = restrict_to_requests(problem, requests, problem.off_cap * 0.5)
    assert np.array_equal(problem.pair_req[pairs], requests[sub.pair_req])
    assert np.array_equal(problem.pair_off[pairs], sub.pair_off)
    assert np.array_equal(np.isin(problem.pair_req, requests), np.isin(np.arange(problem.n_pairs), pairs))
