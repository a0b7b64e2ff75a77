"""The polish (a MIP over the LP's and the answer's pairs) and the rounding's lift to a minimum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from broker.matching import Startup, solve
from broker.matching import polish as polish_module
from broker.matching.generator import generate
from broker.matching.grants import Ledger, density_order, fill, priority_order
from broker.matching.options import EngineOptions
from broker.matching.problem import build_problem
from broker.matching.rounding import round_grants

from .checker import violations
from .exact import optimum
from .factories import instance, offer, request
from .test_feasibility import instances


def _greedy(inst) -> Ledger:
    ledger = Ledger(build_problem(inst))
    fill(ledger, priority_order(ledger.problem))
    return ledger


def _all_pairs(ledger: Ledger) -> np.ndarray:
    return np.arange(ledger.problem.n_pairs)


def test_cuts_back_a_divisible_request_to_serve_a_minimum():
    # Greedy (and the LP's repair) give r0 its 70, leaving 30 < r1's minimum of 40. Cutting r0
    # to 60 serves r1 its 40: 5·60/70 + 40/50 = 5.086 > 5.
    inst = instance([offer(available=100.0)],
                    [request(id="r0", startup="s0", quantity=70.0, weight=5.0),
                     request(id="r1", quantity=50.0, min_quantity=40.0)])
    ledger = _greedy(inst)
    assert ledger.objective() == pytest.approx(5.0)
    stats = polish_module.polish(ledger, _all_pairs(ledger), density_order(ledger.problem), None)
    assert ledger.granted == pytest.approx([60.0, 40.0])
    assert ledger.objective() == pytest.approx(5 * 60 / 70 + 0.8)
    assert stats["kinds"]["gpu"]["gain"] == pytest.approx(ledger.objective() - 5.0, abs=1e-6)
    result = solve(inst)
    assert violations(inst, result) == []
    assert result.objective == pytest.approx(optimum(inst))


def test_packs_whole_lines_better_than_weight_per_unit():
    # One 100 Mbps line; 60 (weight 1.5) is the densest, but 50 + 45 (1.2 + 1.0) fit together.
    inst = instance([offer(kind="data_line", available=100.0)],
                    [request(id="r60", kind="data_line", quantity=60.0, weight=1.5),
                     request(id="r50", kind="data_line", quantity=50.0, weight=1.2),
                     request(id="r45", kind="data_line", quantity=45.0, weight=1.0)])
    ledger = _greedy(inst)
    assert ledger.objective() == pytest.approx(1.5)
    polish_module.polish(ledger, _all_pairs(ledger), density_order(ledger.problem), None)
    assert ledger.objective() == pytest.approx(2.2)
    assert ledger.whole == [True, True, False]  # r45, r50 by id order; r60 left out
    result = solve(inst)
    assert violations(inst, result) == []
    assert result.objective == pytest.approx(2.2)


def test_a_served_minimum_stays_served():
    # The MIP only decides whom to add: r0 holds its minimum and keeps at least that, even
    # where dropping it for r1 would be worth a little more.
    inst = instance([offer(available=50.0)],
                    [request(id="r0", quantity=50.0, min_quantity=50.0, weight=1.0),
                     request(id="r1", startup="s2", quantity=50.0, min_quantity=50.0,
                             weight=1.1)])
    ledger = Ledger(build_problem(inst))
    ledger.grant_divisible(0, [(0, 50.0)])
    polish_module.polish(ledger, _all_pairs(ledger), [0, 1], None)
    assert ledger.granted == [50.0, 0.0]


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_never_lowers_the_answer_and_keeps_every_rule(inst):
    ledger = _greedy(inst)
    before = ledger.objective()
    polish_module.polish(ledger, _all_pairs(ledger), density_order(ledger.problem), None)
    assert ledger.objective() >= before - 1e-9
    round_grants(ledger)
    assert _violations_of(inst, ledger) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_two_lanes_split_budgets_and_stay_feasible(seed):
    # Above the one-lane size the kinds run at once, each with a part of every budget left.
    inst = generate(300, 30, seed)
    assert any(s.budget is not None for s in inst.startups)
    one_lane = solve(inst)
    two_lanes = solve(inst, options=EngineOptions(polish_one_lane_columns=0))
    assert violations(inst, two_lanes) == []
    assert two_lanes.stats["polish"]["after"] >= two_lanes.stats["polish"]["before"] - 1e-9
    # Splitting budgets can only cost a little.
    assert two_lanes.objective >= 0.995 * one_lane.objective


def test_rounding_lifts_split_grants_that_fell_below_the_minimum():
    inst = instance([offer(id="o1", available=100.0), offer(id="o2", available=100.0)],
                    [request(quantity=20.0, min_quantity=10.0)])
    ledger = Ledger(build_problem(inst))
    ledger.commit(0, [(0, 10 / 3), (1, 20 / 3)])  # exactly the minimum, neither on the scale
    round_grants(ledger)
    assert sorted(ledger.grants[0].values()) == [3.334, 6.666]
    assert sum(ledger.grants[0].values()) == pytest.approx(10.0)


def test_rounding_takes_back_what_no_lift_can_keep_above_the_minimum():
    # Both offers are full: there is no thousandth of room to lift either grant.
    inst = instance([offer(id="o1", available=10 / 3), offer(id="o2", available=20 / 3)],
                    [request(quantity=20.0, min_quantity=10.0)])
    ledger = Ledger(build_problem(inst))
    ledger.commit(0, [(0, 10 / 3), (1, 20 / 3)])
    round_grants(ledger)
    assert ledger.grants[0] == {}


def _violations_of(inst, ledger: Ledger) -> list[str]:
    from broker.matching.engine import _result

    return violations(inst, _result(ledger, ledger.objective(), {}))


def test_budgets_hold_across_kinds_in_one_lane():
    # One startup, two kinds, a budget for one of them only: the kinds polished one after the
    # other each see what the other left.
    startups = [Startup(id="s1", budget=100.0)]
    inst = instance([offer(id="g", available=100.0, unit_price=1.0),
                     offer(id="t", kind="tokens", available=100.0, unit_price=1.0)],
                    [request(id="r1", quantity=80.0, min_quantity=80.0),
                     request(id="r2", kind="tokens", quantity=80.0, min_quantity=60.0)],
                    startups=startups)
    result = solve(inst)
    assert violations(inst, result) == []
    assert result.objective == pytest.approx(optimum(inst))


@pytest.mark.parametrize("case", ["no requests", "no offers", "nothing compatible"])
def test_an_instance_with_nothing_to_match_solves_to_nothing(case):
    # The cycle endpoint runs the engine on whatever the district has, empty included.
    offers = [] if case == "no offers" else [offer(kind="tokens")]
    requests = [] if case == "no requests" else [request(kind="gpu")]
    inst = instance(offers, requests, startups=[Startup(id="s1")])
    result = solve(inst)
    assert result.allocations == () and result.objective == 0.0
    assert [u.reason for u in result.unfilled] == ([] if case == "no requests"
                                                   else ["no_compatible_offer"])
