"""Reading instance files: good ones load, bad ones are rejected naming the first bad field."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from broker.matching import InstanceError, load_instance, result_to_json, solve
from broker.matching.cli import match_command
from broker.matching.instance_format import instance_to_json

from .checker import violations

DESIGN_EXAMPLE = {
    "policy": {"share_cap": 0.5},
    "startups": [{"id": "s1", "budget": 20000.0}],
    "offers": [{"id": "o1", "carrier": "ctc", "kind": "gpu", "region": "sh",
                "attributes": {"gpu_model": "H100"}, "available": 1000,
                "unit_price": 12.5, "window": ["2026-12-01", "2026-12-31"]}],
    "requests": [{"id": "r1", "startup": "s1", "kind": "gpu", "quantity": 500,
                  "min_quantity": 100, "regions": ["sh"],
                  "attributes": {"gpu_model": ["A100", "H100"]},
                  "max_unit_price": 15.0, "window": ["2026-12-01", "2026-12-15"],
                  "weight": 1.5, "submitted_at": "2026-11-20T10:00:00+08:00"}],
}


def with_change(path, value):
    data = copy.deepcopy(DESIGN_EXAMPLE)
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return data


DELETE = object()


def test_the_design_example_loads_and_solves():
    inst = load_instance(DESIGN_EXAMPLE)
    result = solve(inst)
    assert violations(inst, result) == []
    # The share cap is half of the 1000 GPU-hours on offer: the whole 500 fits, and so
    # does the budget (500 × 12.5 = 6250 ≤ 20000).
    assert result_to_json(result)["allocations"] == [
        {"request": "r1", "offer": "o1", "quantity": 500.0}]


def test_an_instance_round_trips_through_json():
    inst = load_instance(DESIGN_EXAMPLE)
    assert load_instance(json.loads(json.dumps(instance_to_json(inst)))) == inst


def test_held_is_optional_and_written_only_when_something_is_held():
    inst = load_instance(DESIGN_EXAMPLE)
    assert inst.offers[0].held == 0.0 and "held" not in instance_to_json(inst)["offers"][0]
    spent = load_instance(with_change(("offers", 0), {**DESIGN_EXAMPLE["offers"][0], "available": 0, "held": 1000}))
    assert (spent.offers[0].available, spent.offers[0].held) == (0.0, 1000.0)
    assert instance_to_json(spent)["offers"][0]["held"] == 1000.0
    assert load_instance(json.loads(json.dumps(instance_to_json(spent)))) == spent
    # The request's only offer is fully held: that is its reason, and nothing is allocated.
    assert result_to_json(solve(spent))["unfilled"] == [{"request": "r1", "reason": "capacity_held"}]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("requests", 0, "quantity"), 0, "requests[0].quantity: must be > 0"),
        (("requests", 0, "quantity"), "500", "requests[0].quantity: must be a number"),
        (("requests", 0, "quantity"), True, "requests[0].quantity: must be a number"),
        (("requests", 0, "quantity"), DELETE, "requests[0].quantity: is required"),
        (("requests", 0, "min_quantity"), 600, "requests[0].min_quantity: must be <= quantity"),
        (("requests", 0, "kind"), "fpga", "requests[0].kind: must be one of"),
        (("requests", 0, "startup"), "s9", "requests[0].startup: unknown startup 's9'"),
        (("requests", 0, "window"), ["2026-12-15", "2026-12-01"],
         "requests[0].window: start must not be after end"),
        (("requests", 0, "window"), ["2026-12-01", "soon"], "requests[0].window[1]: must be an ISO date"),
        (("requests", 0, "submitted_at"), "2026-11-20T10:00:00",
         "requests[0].submitted_at: must include a UTC offset"),
        (("requests", 0, "attributes"), {"gpu_model": []},
         "requests[0].attributes.gpu_model: must list at least one acceptable value"),
        (("requests", 0, "attributes"), {"colour": ["red"]},
         "requests[0].attributes.colour: unknown attribute for kind 'gpu'"),
        (("requests", 0, "regions"), [], "requests[0].regions: must be a non-empty list"),
        (("requests", 0, "weight"), -1, "requests[0].weight: must be > 0"),
        (("requests", 0, "colour"), "red", "requests[0].colour: unknown field"),
        (("offers", 0, "available"), -5, "offers[0].available: must be >= 0"),
        (("offers", 0, "held"), -1, "offers[0].held: must be >= 0"),
        (("offers", 0, "held"), "all", "offers[0].held: must be a number"),
        (("offers", 0, "unit_price"), float("nan"), "offers[0].unit_price: must be a finite number"),
        (("offers", 0, "divisible"), "no", "offers[0].divisible: must be true or false"),
        (("offers", 0, "attributes"), {"gpu_memory_gb": "80"},
         "offers[0].attributes.gpu_memory_gb: must be an integer"),
        (("startups", 0, "budget"), -1, "startups[0].budget: must be >= 0"),
        (("policy", "share_cap"), 1.5, "policy.share_cap: must be > 0 and <= 1"),
        (("offers",), {}, "offers: must be a list"),
        (("requests",), DELETE, "requests: is required"),
    ],
)
def test_bad_fields_are_named(path, value, message):
    with pytest.raises(InstanceError) as caught:
        load_instance(with_change(path, value))
    assert str(caught.value).startswith(message)


def test_duplicate_ids_are_named():
    data = copy.deepcopy(DESIGN_EXAMPLE)
    data["offers"].append(copy.deepcopy(data["offers"][0]))
    with pytest.raises(InstanceError, match=r"offers\[1\]\.id: duplicate id 'o1'"):
        load_instance(data)


def test_the_first_bad_request_is_the_one_named():
    data = copy.deepcopy(DESIGN_EXAMPLE)
    for i in range(1, 5):
        data["requests"].append(dict(data["requests"][0], id=f"r{i + 1}"))
    data["requests"][3]["quantity"] = -2
    data["requests"][4]["quantity"] = 0
    with pytest.raises(InstanceError, match=r"^requests\[3\]\.quantity: must be > 0$"):
        load_instance(data)


def test_data_lines_are_never_divisible_whatever_the_file_says():
    data = copy.deepcopy(DESIGN_EXAMPLE)
    data["offers"][0].update(kind="data_line", attributes={}, divisible=True)
    assert load_instance(data).offers[0].divisible is False


# -- the command ---------------------------------------------------------------------------


def test_match_command_prints_the_output_shape(tmp_path):
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(DESIGN_EXAMPLE))
    outcome = CliRunner().invoke(match_command, [str(path), "--time-limit", "5"])
    assert outcome.exit_code == 0, outcome.output
    answer = json.loads(outcome.output)
    assert list(answer) == ["allocations", "objective", "unfilled", "stats"]
    assert answer["allocations"] == [{"request": "r1", "offer": "o1", "quantity": 500.0}]
    assert answer["objective"] == 1.5
    for key in ("solve_seconds", "bound", "gap", "method"):
        assert key in answer["stats"]


def test_match_command_reads_stdin():
    outcome = CliRunner().invoke(match_command, ["-"], input=json.dumps(DESIGN_EXAMPLE))
    assert outcome.exit_code == 0
    assert json.loads(outcome.output)["objective"] == 1.5


def test_match_command_rejects_a_bad_field_with_exit_2(tmp_path):
    data = copy.deepcopy(DESIGN_EXAMPLE)
    data["requests"][0]["quantity"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    outcome = CliRunner().invoke(match_command, [str(path)])
    assert outcome.exit_code == 2
    assert "requests[0].quantity: must be > 0" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize("text", ["{not json", "[]", "null"])
def test_match_command_rejects_non_instances_with_exit_2(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    outcome = CliRunner().invoke(match_command, [str(path)])
    assert outcome.exit_code == 2
    assert outcome.output.startswith("error:")


def test_match_command_reports_a_missing_file(tmp_path):
    outcome = CliRunner().invoke(match_command, [str(tmp_path / "nope.json")])
    assert outcome.exit_code == 2
    assert "cannot read" in outcome.output
