"""The same instance gives the same answer, byte for byte, whatever order it was listed in."""

from __future__ import annotations

import json
import random

from broker.matching import Instance, result_to_json, solve
from broker.matching.generator import generate

from .checker import violations

# Only the stopwatch readings may differ between two runs.
TIMINGS = {"solve_seconds", "build_seconds", "greedy_seconds", "lp", "polish"}


def printed(result) -> str:
    answer = result_to_json(result)
    answer["stats"] = {k: v for k, v in answer["stats"].items() if k not in TIMINGS}
    return json.dumps(answer, sort_keys=True)


def test_same_input_same_output():
    inst = generate(400, 40, seed=7)
    first, second = solve(inst), solve(inst)
    assert violations(inst, first) == []
    assert printed(first) == printed(second)


def test_input_order_does_not_matter():
    inst = generate(300, 30, seed=3)
    shuffler = random.Random(1)
    shuffled = Instance(
        inst.policy,
        tuple(shuffler.sample(inst.startups, len(inst.startups))),
        tuple(shuffler.sample(inst.offers, len(inst.offers))),
        tuple(shuffler.sample(inst.requests, len(inst.requests))),
    )
    assert printed(solve(inst)) == printed(solve(shuffled))


def test_generator_is_seeded():
    assert generate(50, 12, seed=5) == generate(50, 12, seed=5)
    assert generate(50, 12, seed=5) != generate(50, 12, seed=6)


def test_output_quantities_are_on_the_stored_scale():
    inst = generate(500, 50, seed=11)
    for allocation in solve(inst).allocations:
        assert round(allocation.quantity, 3) == allocation.quantity


def test_the_garbage_collector_is_left_as_it_was_found():
    import gc

    inst = generate(50, 10, seed=1)
    assert gc.isenabled()
    solve(inst)
    assert gc.isenabled()
    gc.disable()
    try:
        solve(inst)
        assert not gc.isenabled()
    finally:
        gc.enable()
