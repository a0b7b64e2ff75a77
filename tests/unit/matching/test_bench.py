"""`broker bench match`: the table, and the untimed reference optima that bracket every answer."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from broker.matching import solve
from broker.matching.bench import run_benchmark
from broker.matching.cli import bench_match_command
from broker.matching.engine import lp_optimum, mip_optimum
from broker.matching.generator import generate

from .exact import optimum


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_optima_bracket_the_engine_and_each_other(seed):
    inst = generate(60, 12, seed)
    engine = solve(inst).objective
    lp, plain = lp_optimum(inst), lp_optimum(inst, plain=True)
    mip = mip_optimum(inst, 60)
    best = optimum(inst)  # the tests' own MILP, written independently of the engine
    assert mip["status"] == "Optimal"
    # Every answer ≤ the optimum ≤ the MIP's dual bound ≤ the LP ≤ the plain LP.
    assert engine <= best + 1e-6
    assert best <= mip["bound"] + 1e-6
    assert mip["bound"] <= lp["bound"] + 1e-6
    assert lp["bound"] <= plain["bound"] + 1e-6
    # The LP value and its dual bound agree once solved to optimality.
    assert lp["objective"] == pytest.approx(lp["bound"], rel=1e-6, abs=1e-6)
    # The MIP's answer is the optimum (within HiGHS's default relative gap, 1e-4).
    assert mip["objective"] == pytest.approx(best, rel=1e-4, abs=1e-6)


def test_mip_reference_is_skipped_above_its_size():
    assert mip_optimum(generate(60, 12, 0), 60, max_pairs=1) is None


@pytest.mark.slow
def test_bench_prints_a_row_per_method_with_the_references():
    lines: list[str] = []
    rows = run_benchmark([(80, 12)], seed=3, time_limit=None, reference=True, echo=lines.append)
    assert lines[0].split()[:4] == ["size", "pairs", "method", "wall"]
    assert "of MIP" in lines[0] and len(lines) == 3
    engine, greedy = rows
    assert (engine["method"], greedy["method"]) == ("engine", "greedy")
    assert engine["objective"] >= greedy["objective"] - 1e-9
    for row in rows:
        assert 0 < row["of_bound"] <= 1 + 1e-9
        assert row["objective"] <= row["mip"]["bound"] + 1e-6
        assert row["of_plain_lp"] <= row["of_lp"] + 1e-9
        assert row["peak_mib"] > 0 and row["wall_seconds"] > 0


def test_bench_command_rejects_a_bad_size():
    result = CliRunner().invoke(bench_match_command, ["--sizes", "10by5"])
    assert result.exit_code == 2
    assert "--sizes" in result.output and "REQUESTSxOFFERS" in result.output
