"""A startup's own prices (`Startup.prices`: the price after the subsidy it would get): its
budget and its price ceilings are checked on them, and without them nothing changes."""

from __future__ import annotations

import pytest

from broker.matching import InstanceError, Startup, greedy, instance_to_json, load_instance, solve
from broker.matching.model import BUDGET, PRICE_CEILING

from .checker import violations
from .factories import instance, offer, request

SOLVERS = [pytest.param(solve, id="engine"), pytest.param(greedy, id="greedy")]


def granted(result, request_id="r1") -> float:
    return sum(a.quantity for a in result.allocations if a.request == request_id)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_budget_that_binds_on_gross_prices_but_not_on_net_ones_is_filled(solver):
    offers = [offer(unit_price=2.0, available=100.0)]
    requests = [request(quantity=40.0)]
    gross = instance(offers, requests, [Startup("s1", budget=50.0)])
    net = instance(offers, requests, [Startup("s1", budget=50.0, prices={"o1": 1.0})])  # a 50% subsidy

    at_gross, at_net = solver(gross), solver(net)

    assert granted(at_gross) == pytest.approx(25.0)  # 50 yuan buys 25 units at 2.0
    assert [u.reason for u in at_gross.unfilled] == [BUDGET]
    assert granted(at_net) == pytest.approx(40.0)  # 40 units at 1.0 is 40 yuan, within 50
    assert at_net.unfilled == ()
    assert violations(net, at_net) == []


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_price_ceiling_is_checked_on_what_the_startup_pays(solver):
    offers = [offer(unit_price=1.0)]
    requests = [request(max_unit_price=0.6)]

    assert [u.reason for u in solver(instance(offers, requests)).unfilled] == [PRICE_CEILING]
    served = solver(instance(offers, requests, [Startup("s1", prices={"o1": 0.5})]))
    assert granted(served) == pytest.approx(10.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_cheapest_offer_is_the_cheapest_for_that_startup(solver):
    offers = [offer("o1", unit_price=1.0, available=10.0), offer("o2", unit_price=0.8, available=10.0)]
    requests = [request("r1", "s1", quantity=10.0), request("r2", "s2", quantity=10.0)]
    startups = [Startup("s1", prices={"o1": 0.5}), Startup("s2")]

    result = solver(instance(offers, requests, startups))

    assert {(a.request, a.offer) for a in result.allocations} == {("r1", "o1"), ("r2", "o2")}


def test_prices_equal_to_the_offers_change_nothing():
    offers = [offer("o1", unit_price=1.5, available=30.0), offer("o2", unit_price=0.5, available=5.0)]
    requests = [request("r1", "s1", quantity=20.0), request("r2", "s1", quantity=20.0, weight=2.0)]
    plain = solve(instance(offers, requests, [Startup("s1", budget=25.0)]))
    same = solve(instance(offers, requests, [Startup("s1", budget=25.0, prices={"o1": 1.5, "o2": 0.5})]))
    assert plain.allocations == same.allocations and plain.objective == same.objective


def test_the_file_format_carries_prices_only_when_there_are_some():
    offers = [offer("o1", unit_price=1.0)]
    plain = instance(offers, [request()])
    assert "prices" not in instance_to_json(plain)["startups"][0]  # files without it stay as they were

    priced = instance(offers, [request()], [Startup("s1", budget=9.0, prices={"o1": 0.25})])
    document = instance_to_json(priced)
    assert document["startups"][0]["prices"] == {"o1": 0.25}
    assert load_instance(document) == priced


@pytest.mark.parametrize("prices, path", [
    ({"o9": 1.0}, "startups[0].prices.o9"),
    ({"o1": -1.0}, "startups[0].prices.o1"),
    ({"o1": "cheap"}, "startups[0].prices.o1"),
    (["o1"], "startups[0].prices"),
])
def test_bad_prices_are_named_by_their_path(prices, path):
    document = instance_to_json(instance([offer("o1")], [request()]))
    document["startups"][0]["prices"] = prices
    with pytest.raises(InstanceError) as error:
        load_instance(document)
    assert error.value.path == path
