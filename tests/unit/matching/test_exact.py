"""The engine against an exact MILP on small instances: the bound holds, the answer is close."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from broker.matching import solve
from broker.matching.generator import generate

from .exact import optimum
from .test_feasibility import instances


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(instances())
def test_bound_is_above_and_answer_below_the_exact_optimum(inst):
    result = solve(inst)
    best = optimum(inst)
    # The reported bound must hold for the full problem, and no answer can beat the optimum.
    assert result.stats["bound"] >= best - 1e-6
    assert result.objective <= best + 1e-6


def test_engine_is_close_to_exact_on_generated_instances():
    # Small district-like instances: minimums, whole data lines, caps and budgets all in play.
    total_engine = total_exact = 0.0
    for seed in range(6):
        inst = generate(40, 12, seed)
        total_engine += solve(inst).objective
        total_exact += optimum(inst)
    assert total_engine >= 0.98 * total_exact
