"""Every reason code, each from an instance built to produce it."""

from __future__ import annotations

from datetime import date

from broker.matching import Startup, solve
from broker.matching.problem import build_problem

from .checker import violations
from .factories import instance, offer, request


def reason_of(inst, request_id="r1"):
    result = solve(inst)
    assert violations(inst, result) == []
    return {u.request: u.reason for u in result.unfilled}.get(request_id)


def test_no_compatible_offer_when_nothing_matches_kind_and_attributes():
    inst = instance([offer(attributes={"gpu_model": "A100"})],
                    [request(attributes={"gpu_model": ("H100",)})])
    assert reason_of(inst) == "no_compatible_offer"


def test_no_compatible_offer_when_the_kind_has_no_offers():
    inst = instance([offer(kind="cpu")], [request(kind="gpu")])
    assert reason_of(inst) == "no_compatible_offer"


def test_region_when_only_other_regions_have_it():
    inst = instance([offer(region="hz")], [request(regions=("sh",))])
    assert reason_of(inst) == "region"


def test_window_when_no_offer_covers_the_window():
    inst = instance([offer(window=(date(2026, 12, 1), date(2026, 12, 10)))],
                    [request(window=(date(2026, 12, 5), date(2026, 12, 20)))])
    assert reason_of(inst) == "window"


def test_price_ceiling_when_every_fitting_offer_is_dearer():
    inst = instance([offer(unit_price=20.0)], [request(max_unit_price=15.0)])
    assert reason_of(inst) == "price_ceiling"


def test_capacity_taken_by_a_higher_weighted_request():
    inst = instance([offer(available=10.0)],
                    [request(id="r0", startup="s0", quantity=10.0, weight=2.0),
                     request(id="r1", quantity=10.0, weight=1.0)])
    result = solve(inst)
    assert {u.request: u.reason for u in result.unfilled} == {"r1": "capacity_taken"}
    assert [(a.request, a.quantity) for a in result.allocations] == [("r0", 10.0)]


def test_capacity_short_when_it_got_every_unit_there_is():
    # Nobody else took any and nothing is held: "went to requests ranked higher" would lie.
    inst = instance([offer(available=6.0)], [request(quantity=10.0)])
    result = solve(inst)
    assert [a.quantity for a in result.allocations] == [6.0]
    assert reason_of(inst) == "capacity_short"


def test_budget_when_the_startup_cannot_pay():
    inst = instance([offer(unit_price=10.0)], [request(quantity=10.0, min_quantity=10.0)],
                    startups=[Startup(id="s1", budget=50.0)])
    assert reason_of(inst) == "budget"


def test_budget_caps_a_divisible_grant():
    inst = instance([offer(unit_price=10.0)], [request(quantity=10.0)],
                    startups=[Startup(id="s1", budget=50.0)])
    result = solve(inst)
    assert [a.quantity for a in result.allocations] == [5.0]
    assert reason_of(inst) == "budget"


def test_share_cap_when_the_startup_has_had_its_share():
    inst = instance([offer(available=100.0)], [request(quantity=80.0)], share_cap=0.5)
    result = solve(inst)
    assert [a.quantity for a in result.allocations] == [50.0]
    assert reason_of(inst) == "share_cap"


def test_below_minimum_when_the_supply_never_reaches_it():
    inst = instance([offer(available=30.0)], [request(quantity=50.0, min_quantity=40.0)])
    assert reason_of(inst) == "below_minimum"


def test_below_minimum_when_no_line_is_big_enough_to_grant_whole():
    inst = instance([offer(kind="data_line", available=50.0)],
                    [request(kind="data_line", quantity=100.0)])
    assert reason_of(inst) == "below_minimum"


def test_capacity_taken_when_what_a_higher_request_left_is_below_the_minimum():
    # r0 in full leaves 30 < 40: the 100 could have met the minimum, r0 took it. (With r1 at
    # weight 1, cutting r0 to 60 to serve r1 its 40 would be worth more, 5·60/70 + 40/50 > 5,
    # and the engine does that.)
    inst = instance([offer(available=100.0)],
                    [request(id="r0", startup="s0", quantity=70.0, weight=5.0),
                     request(id="r1", quantity=50.0, min_quantity=40.0, weight=0.1)])
    assert reason_of(inst) == "capacity_taken"


def test_data_line_is_granted_whole_from_one_offer():
    inst = instance([offer(id="o1", kind="data_line", available=60.0),
                     offer(id="o2", kind="data_line", available=60.0)],
                    [request(kind="data_line", quantity=100.0)])
    result = solve(inst)
    assert result.allocations == ()
    assert reason_of(inst) == "below_minimum"
    bigger = instance([offer(id="o1", kind="data_line", available=60.0),
                       offer(id="o2", kind="data_line", available=150.0)],
                      [request(kind="data_line", quantity=100.0),
                       request(id="r2", kind="data_line", quantity=50.0, minutes=1)])
    result = solve(bigger)
    assert violations(bigger, result) == []
    assert sorted((a.request, a.offer, a.quantity) for a in result.allocations) == [
        ("r1", "o2", 100.0), ("r2", "o1", 50.0)]


def test_cheaper_offer_wins_a_tie():
    inst = instance([offer(id="o1", unit_price=3.0), offer(id="o2", unit_price=1.0)],
                    [request(quantity=10.0)])
    assert [(a.offer, a.quantity) for a in solve(inst).allocations] == [("o2", 10.0)]


def test_earlier_submission_wins_a_tie():
    inst = instance([offer(available=10.0)],
                    [request(id="r1", startup="s1", quantity=10.0, minutes=5),
                     request(id="r2", startup="s2", quantity=10.0, minutes=1)])
    assert [a.request for a in solve(inst).allocations] == ["r2"]


# -- capacity held outside the instance (earlier cycles' proposals and grants) ----------------


def test_capacity_held_when_the_only_fitting_offer_is_fully_held():
    # The other offer's window doesn't cover the request: that is not why it is short.
    inst = instance([offer(id="o1", available=0.0, held=100.0),
                     offer(id="o2", window=(date(2027, 1, 1), date(2027, 1, 31)))],
                    [request()])
    assert reason_of(inst) == "capacity_held"


def test_capacity_held_when_the_rest_of_a_lot_is_held():
    inst = instance([offer(available=200.0, held=800.0)], [request(quantity=500.0)])
    result = solve(inst)
    assert [a.quantity for a in result.allocations] == [200.0]
    assert reason_of(inst) == "capacity_held"


def test_capacity_held_when_what_is_left_is_below_the_minimum():
    inst = instance([offer(available=30.0, held=70.0)], [request(quantity=50.0, min_quantity=40.0)])
    assert reason_of(inst) == "capacity_held"


def test_below_minimum_when_not_even_the_held_capacity_would_reach_it():
    inst = instance([offer(available=10.0, held=20.0)], [request(quantity=50.0, min_quantity=40.0)])
    assert reason_of(inst) == "below_minimum"


def test_capacity_taken_comes_before_capacity_held():
    # What is left went to r0 in this instance; that is the contest r1 lost.
    inst = instance([offer(available=100.0, held=900.0)],
                    [request(id="r0", startup="s0", quantity=100.0, weight=2.0),
                     request(id="r1", quantity=100.0)])
    assert reason_of(inst) == "capacity_taken"


def test_share_cap_is_not_the_reason_when_there_was_nothing_to_take():
    # Half of nothing available is nothing, and a cap of the whole supply is met by taking it
    # all: in both, the held capacity is what the request lacked.
    fully = instance([offer(available=0.0, held=100.0)], [request()], share_cap=0.5)
    assert reason_of(fully) == "capacity_held"
    whole = instance([offer(available=200.0, held=800.0)], [request(quantity=500.0)], share_cap=1.0)
    assert reason_of(whole) == "capacity_held"
    # Capacity beyond the cap that another startup took: the cap is what bound.
    both = instance([offer(available=100.0)],
                    [request(id="r0", startup="s0", quantity=80.0), request(quantity=80.0)],
                    share_cap=0.5)
    assert {u.request: u.reason for u in solve(both).unfilled} == {"r0": "share_cap", "r1": "share_cap"}


def test_capacity_held_for_a_whole_data_line():
    fully = instance([offer(kind="data_line", available=0.0, held=100.0)],
                     [request(kind="data_line", quantity=100.0)])
    assert reason_of(fully) == "capacity_held"
    partly = instance([offer(kind="data_line", available=60.0, held=40.0)],
                      [request(kind="data_line", quantity=100.0)])
    assert reason_of(partly) == "capacity_held"
    never = instance([offer(kind="data_line", available=60.0, held=30.0)],
                     [request(kind="data_line", quantity=100.0)])
    assert reason_of(never) == "below_minimum"


def test_fully_held_offers_still_give_the_nearest_miss():
    # The only H100 lot is fully held and dearer than the ceiling; the A100 lot has room.
    inst = instance([offer(id="o1", unit_price=20.0, available=0.0, held=100.0,
                           attributes={"gpu_model": "H100"}),
                     offer(id="o2", unit_price=5.0, attributes={"gpu_model": "A100"})],
                    [request(attributes={"gpu_model": ("H100",)}, max_unit_price=15.0)])
    assert reason_of(inst) == "price_ceiling"


def test_offers_with_nothing_available_stay_out_of_the_problem_and_the_answer():
    requests = [request(id=f"r{i}", startup=f"s{i % 3}", quantity=40.0 + i, min_quantity=10.0,
                        minutes=i) for i in range(8)]
    live = [offer(id="o1", available=120.0, held=30.0), offer(id="o2", available=90.0, unit_price=2.0)]
    spent = [offer(id=f"o{i}", available=0.0, held=50.0, unit_price=0.5) for i in range(3, 7)]
    with_spent = instance(live + spent, requests, share_cap=0.6)
    without = instance([offer(id="o1", available=120.0), offer(id="o2", available=90.0, unit_price=2.0)],
                       requests, share_cap=0.6)
    assert build_problem(with_spent).n_pairs == build_problem(without).n_pairs == 16
    a, b = solve(with_spent), solve(without)
    assert violations(with_spent, a) == []
    assert (a.allocations, a.objective, a.stats["bound"]) == (b.allocations, b.objective, b.stats["bound"])
    # Only the reasons could differ; here those left short lost to the others first.
    assert a.unfilled == b.unfilled and {u.reason for u in a.unfilled} == {"capacity_taken"}


def test_budget_is_not_the_reason_when_the_capacity_is_held():
    # It couldn't pay for its minimum of 40, but only 30 were there to buy: the rest is held.
    inst = instance([offer(available=30.0, held=70.0)], [request(quantity=50.0, min_quantity=40.0)],
                    startups=[Startup(id="s1", budget=10.0)])
    assert reason_of(inst) == "capacity_held"
    there = instance([offer(available=100.0)], [request(quantity=50.0, min_quantity=40.0)],
                     startups=[Startup(id="s1", budget=10.0)])
    assert reason_of(there) == "budget"
