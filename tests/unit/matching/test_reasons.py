"""Every reason code, each from an instance built to produce it."""

from __future__ import annotations

from datetime import date

from broker.matching import Startup, solve

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


def test_partial_grant_short_for_capacity():
    inst = instance([offer(available=6.0)], [request(quantity=10.0)])
    result = solve(inst)
    assert [a.quantity for a in result.allocations] == [6.0]
    assert reason_of(inst) == "capacity_taken"


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


def test_below_minimum_when_what_is_left_is_too_little():
    # r0 in full leaves 30 < 40. (With r1 at weight 1, cutting r0 to 60 to serve r1 its 40
    # would be worth more, 5·60/70 + 40/50 > 5, and the engine does that.)
    inst = instance([offer(available=100.0)],
                    [request(id="r0", startup="s0", quantity=70.0, weight=5.0),
                     request(id="r1", quantity=50.0, min_quantity=40.0, weight=0.1)])
    assert reason_of(inst) == "below_minimum"


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
