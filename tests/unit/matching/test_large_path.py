"""The path taken on instances too big for one LP (max-flow prices + per-kind LP blocks on two
threads), forced on small instances so it can be checked against the exact optimum; and the
pieces it relies on: viable pairs, the cheapening pass."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from broker.matching import greedy, solve
from broker.matching.generator import generate
from broker.matching.grants import Ledger, cheapen, density_order, fill
from broker.matching.options import EngineOptions
from broker.matching.problem import build_problem
from broker.matching.rounding import round_grants

from .checker import violations
from .exact import optimum
from .test_feasibility import instances

# Every instance takes the large path, per-kind blocks included.
LARGE_PATH = EngineOptions(whole_lp_max_pairs=-1, min_block_seconds=0.0)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(instances())
def test_large_path_is_feasible_bounded_and_above_the_baseline(inst):
    result = solve(inst, options=LARGE_PATH)
    assert violations(inst, result) == []
    assert result.stats["bound"] >= optimum(inst) - 1e-6
    assert result.objective >= greedy(inst).objective - 1e-9


def test_large_path_on_generated_instances():
    for seed in range(3):
        inst = generate(60, 14, seed)
        result = solve(inst, options=LARGE_PATH)
        assert "flow" in result.stats["lp"]
        assert violations(inst, result) == []
        assert result.stats["bound"] >= optimum(inst) - 1e-6


def test_large_path_under_a_time_limit_stays_feasible():
    inst = generate(300, 40, 1)
    for limit in (1e-6, 0.05, 1.0):
        assert violations(inst, solve(inst, time_limit=limit, options=LARGE_PATH)) == []


def test_large_path_is_deterministic_without_a_time_limit():
    inst = generate(200, 30, 2)
    first, second = solve(inst, options=LARGE_PATH), solve(inst, options=LARGE_PATH)
    assert first.allocations == second.allocations
    assert first.unfilled == second.unfilled


def test_viable_pairs_rule_out_only_what_no_answer_can_use():
    # Pairs the engine's answers use are always viable.
    for seed in range(4):
        inst = generate(80, 16, seed)
        problem = build_problem(inst)
        ledger = Ledger(problem)
        fill(ledger, density_order(problem))
        used = [(r, o) for r, grants in enumerate(ledger.grants) for o in grants]
        if used:
            req, off = (np.array(x) for x in zip(*used))
            assert problem.pair_viable[problem.pair_index(req, off)].all()


def test_cheapen_keeps_every_total_and_only_lowers_cost():
    inst = generate(400, 40, 3)
    problem = build_problem(inst)
    ledger = Ledger(problem)
    fill(ledger, density_order(problem))
    round_grants(ledger)
    objective, cost = ledger.objective(), ledger.cost()
    totals = [sum(g.values()) for g in ledger.grants]
    cheapen(ledger, density_order(problem))
    round_grants(ledger)
    assert ledger.objective() == pytest.approx(objective, abs=1e-9)
    assert ledger.cost() <= cost + 1e-6
    assert [sum(g.values()) for g in ledger.grants] == pytest.approx(totals, abs=1e-9)
