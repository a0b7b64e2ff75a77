"""Property tests: every answer on random instances keeps every hard rule."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.matching import Instance, Startup, greedy, solve

from .checker import violations
from .factories import instance, offer, request

KINDS = ("gpu", "data_line", "tokens")
REGIONS = ("sh", "hz", "sz")
MODELS = ("A100", "H100")
DAYS = [date(2026, 12, d) for d in (1, 5, 10, 20, 31)]


@st.composite
def windows(draw):
    a, b = sorted(draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=2)))
    return (a, b)


@st.composite
def instances(draw):
    n_startups = draw(st.integers(1, 3))
    startups = [
        Startup(id=f"s{i}", budget=draw(st.none() | st.floats(0, 400).map(lambda x: round(x, 2))))
        for i in range(n_startups)
    ]
    offers = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(KINDS))
        attributes = {"gpu_model": draw(st.sampled_from(MODELS))} if kind == "gpu" else {}
        offers.append(offer(
            id=f"o{i}", kind=kind, region=draw(st.sampled_from(REGIONS)), attributes=attributes,
            available=draw(st.sampled_from([0.0, 5.0, 10.0, 25.5, 40.0, 100.0])),
            unit_price=draw(st.sampled_from([0.0, 0.5, 1.0, 2.25, 4.0])),
            window=draw(windows()), divisible=draw(st.booleans()),
        ))
    requests = []
    for i in range(draw(st.integers(1, 9))):
        kind = draw(st.sampled_from(KINDS))
        quantity = draw(st.sampled_from([1.0, 3.3, 10.0, 20.0, 33.333, 60.0]))
        has_min = draw(st.booleans())
        attributes = {}
        if kind == "gpu" and draw(st.booleans()):
            attributes = {"gpu_model": tuple(draw(st.sets(st.sampled_from(MODELS), min_size=1)))}
        requests.append(request(
            id=f"r{i}", startup=f"s{draw(st.integers(0, n_startups - 1))}", kind=kind,
            quantity=quantity,
            min_quantity=round(quantity * draw(st.sampled_from([0.2, 0.5, 1.0])), 3) if has_min else None,
            regions=draw(st.none() | st.sets(st.sampled_from(REGIONS), min_size=1).map(sorted).map(tuple)),
            attributes=attributes,
            max_unit_price=draw(st.none() | st.sampled_from([0.0, 1.0, 3.0])),
            window=draw(windows()),
            weight=draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])),
            minutes=draw(st.integers(0, 3)),
        ))
    share_cap = draw(st.none() | st.sampled_from([0.1, 0.3, 0.6, 1.0]))
    # Some startups pay less than the offers' prices on some offers (the subsidy they'd get).
    startups = [
        dataclasses.replace(s, prices={
            o.id: round(o.unit_price * draw(st.sampled_from([0.0, 0.5, 0.7])), 4)
            for o in offers if draw(st.integers(0, 3)) == 0
        })
        for s in startups
    ]
    return instance(offers, requests, startups, share_cap=share_cap)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@SETTINGS
@given(instances())
def test_engine_answers_are_feasible_and_bounded(inst):
    result = solve(inst)
    assert violations(inst, result) == []
    assert result.stats["bound"] >= result.objective - 1e-9
    assert 0.0 <= result.stats["gap"] <= 1.0


@pytest.mark.slow
@SETTINGS
@given(instances())
def test_engine_is_never_below_the_greedy_baseline(inst):
    baseline = greedy(inst)
    assert violations(inst, baseline) == []
    assert solve(inst).objective >= baseline.objective - 1e-9


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(instances(), st.sampled_from([1e-6, 0.001, 0.05]))
def test_answers_stay_feasible_under_any_time_limit(inst, time_limit):
    assert violations(inst, solve(inst, time_limit=time_limit)) == []


@pytest.mark.slow
@SETTINGS
@given(instances(), st.lists(st.sampled_from([0.0, 5.0, 60.0]), min_size=6, max_size=6))
def test_held_capacity_changes_nothing_but_reasons_towards_capacity_held(inst, held):
    with_held = Instance(inst.policy, inst.startups,
                         tuple(dataclasses.replace(o, held=h) for o, h in zip(inst.offers, held)),
                         inst.requests)
    plain, result = solve(inst), solve(with_held)
    assert violations(with_held, result) == []
    assert (result.allocations, result.objective) == (plain.allocations, plain.objective)
    assert [u.request for u in result.unfilled] == [u.request for u in plain.unfilled]
    # More capacity somewhere else can only turn "never enough" or "it has it all" into "held".
    for before, after in zip(plain.unfilled, result.unfilled):
        assert after.reason == before.reason or (
            before.reason in ("below_minimum", "capacity_short") and after.reason == "capacity_held")
