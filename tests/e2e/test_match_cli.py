"""`broker match` as a user runs it: a real process whose standard output is JSON and nothing else."""

import json
import subprocess
import sys

import pytest

# DESIGN.md's example instance, with a second request the offer cannot serve.
INSTANCE = {
    "policy": {"share_cap": 0.5},
    "startups": [{"id": "s1", "budget": 20000.0}],
    "offers": [{"id": "o1", "carrier": "ctc", "kind": "gpu", "region": "sh", "attributes": {"gpu_model": "H100"},
                "available": 1000, "unit_price": 12.5, "window": ["2026-12-01", "2026-12-31"]}],
    "requests": [
        {"id": "r1", "startup": "s1", "kind": "gpu", "quantity": 500, "min_quantity": 100, "regions": ["sh"],
         "attributes": {"gpu_model": ["A100", "H100"]}, "max_unit_price": 15.0,
         "window": ["2026-12-01", "2026-12-15"], "weight": 1.5, "submitted_at": "2026-11-20T10:00:00+08:00"},
        {"id": "r2", "startup": "s1", "kind": "gpu", "quantity": 10, "max_unit_price": 1.0,
         "window": ["2026-12-01", "2026-12-15"], "submitted_at": "2026-11-21T10:00:00+08:00"},
    ],
}


def _match(path, *args):
    return subprocess.run(
        [sys.executable, "-m", "broker", "match", str(path), *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_broker_match_prints_json_alone_on_stdout(tmp_path):
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(INSTANCE))
    run = _match(path, "--time-limit", "5")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)  # fails if the solver library printed anything beside the JSON
    assert answer["allocations"] == [{"request": "r1", "offer": "o1", "quantity": 500.0}]
    assert answer["unfilled"] == [{"request": "r2", "reason": "price_ceiling"}]
    assert answer["objective"] == 1.5


@pytest.mark.slow
def test_broker_match_refuses_a_bad_instance_on_stderr_only(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**INSTANCE, "requests": [{**INSTANCE["requests"][0], "quantity": -5}]}))
    run = _match(path)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "requests[0].quantity" in run.stderr
