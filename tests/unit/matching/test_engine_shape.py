"""The engine's shape: `solve` runs named phases in a fixed order over one `TimeBudget`, its
tunables are `EngineOptions` (never module globals), and the solver imports nothing of the
web app or the database."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from broker.matching import engine
from broker.matching.generator import generate
from broker.matching.options import DEFAULT_OPTIONS, EngineOptions, Reserve, TimeBudget

from .factories import instance, offer, request

MATCHING = Path(engine.__file__).parent


class _Recorded(engine._Solve):
    """The engine's own solve, noting each phase as it starts."""

    PHASES = ("build", "greedy_answers", "relax_whole", "max_flow", "market_blocks",
              "kind_blocks", "repair_lp", "polish", "round_and_cheapen", "result")

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.ran: list[str] = []
        for name in self.PHASES:
            phase = getattr(self, name)
            setattr(self, name, self._noting(name, phase))

    def _noting(self, name, phase):
        def run(*args):
            self.ran.append(name)
            return phase(*args)
        return run


def _phases(inst, time_limit=None, options=DEFAULT_OPTIONS) -> list[str]:
    solve = _Recorded(inst, time_limit, options)
    solve.run()
    return solve.ran


def test_small_instances_take_the_whole_lp():
    assert _phases(generate(60, 14, 0)) == [
        "build", "greedy_answers", "relax_whole", "repair_lp", "polish", "round_and_cheapen",
        "result"]


def test_above_the_whole_lp_size_the_large_path_runs_in_order():
    assert _phases(generate(60, 14, 0), options=EngineOptions(whole_lp_max_pairs=-1)) == [
        "build", "greedy_answers", "max_flow", "market_blocks", "kind_blocks", "repair_lp",
        "polish", "round_and_cheapen", "result"]


def test_no_compatible_pair_skips_the_lp():
    inst = instance([offer(kind="gpu")], [request(kind="tokens")])
    assert _phases(inst) == ["build", "greedy_answers", "polish", "round_and_cheapen", "result"]


def test_options_reach_the_phases():
    inst = generate(60, 14, 0)
    assert "flow" not in engine.solve(inst).stats["lp"]
    large = engine.solve(inst, options=EngineOptions(whole_lp_max_pairs=-1)).stats["lp"]
    assert "flow" in large
    # Not enough time left for per-kind blocks: skipped, and said why.
    hurried = engine.solve(inst, time_limit=30.0, options=EngineOptions(
        whole_lp_max_pairs=-1, min_block_seconds=1e9)).stats["lp"]
    assert hurried["status"] == "skipped: no time left"
    assert "flow" in hurried


def test_one_reserve_formula_for_every_phase():
    started = time.perf_counter()
    budget = TimeBudget(10.0, n_requests=500, started=started)
    # The larger of a share of the limit and seconds per request.
    assert budget.reserved(Reserve(0.2, 1e-3)) == pytest.approx(2.0)
    assert budget.reserved(Reserve(0.2, 1e-2)) == pytest.approx(5.0)
    assert budget.deadline(Reserve(0.2, 1e-2)) == pytest.approx(started + 5.0)
    left = budget.seconds_left(Reserve(0.2, 1e-2))
    assert 5.0 - (time.perf_counter() - started) <= left <= 5.0
    # Never below the floor a phase asks for, even with the limit spent.
    spent = TimeBudget(1.0, n_requests=0, started=started - 10.0)
    assert spent.seconds_left(Reserve(0.1, 0.0)) == 0.0
    assert spent.seconds_left(Reserve(0.1, 0.0), at_least=0.05) == 0.05
    unlimited = TimeBudget(None, n_requests=500)
    assert unlimited.seconds_left(Reserve(0.2, 1e-2)) is None
    assert unlimited.deadline(Reserve(0.2, 1e-2)) is None


def _module_level_numbers(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            values = (node.value.elts if isinstance(node.value, ast.Tuple) else [node.value])
            if any(isinstance(v, ast.Constant) and isinstance(v.value, int | float)
                   and not isinstance(v.value, bool) for v in values):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [ast.unparse(t) for t in targets]
    return names


@pytest.mark.parametrize("module", ["engine.py", "blocks.py"])
def test_tunables_are_options_not_module_globals(module):
    assert _module_level_numbers(MATCHING / module) == []


_IMPURE = ("flask", "sqlalchemy", "broker.api", "broker.db", "broker.models", "broker.services",
           "broker.web", "broker.auth", "scheduler", "adapters")


def test_the_solver_imports_no_app_or_database():
    bad = []
    for path in sorted(MATCHING.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names
                    if any(n == p or n.startswith(p + ".") for p in _IMPURE)]
    assert bad == []
