"""The matching benchmark: engine vs priority greedy on seeded district-like instances.

Each solve runs in a fresh Python process that loads the instance file, solves, and reports
its own wall time and peak resident memory (ru_maxrss): memory is measured honestly, with
nothing left over from generating the instance or from the other method's run.

    python -m broker.matching.bench --sizes 1000x100,10000x1000 --seed 0 --time-limit 30

"of bound" compares with the engine's own bound, found within its time limit. With
`--reference`, a third process also solves the LP relaxation to optimality without a time
limit (untimed; ≈ 35 s at 100k × 10k, twice: with and without the viable-pair tightening), and
the table adds how far each answer is from those exact LP optima and, up to 400k pairs, from
the dual bound of the exact MIP (HiGHS on the whole problem, up to 10 minutes): no answer can
beat that bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Callable

_WORKER = "_worker"
# The exact MIP (reference only) is tried up to this many compatible pairs, for this long.
_MIP_MAX_PAIRS, _MIP_SECONDS = 400_000, 600.0


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1000x100,10000x1000' -> [(1000, 100), (10000, 1000)]."""
    sizes = []
    for part in text.split(","):
        try:
            requests, offers = part.strip().lower().split("x")
            size = (int(requests), int(offers))
        except ValueError:
            raise ValueError(f"{part!r} is not REQUESTSxOFFERS, e.g. 10000x1000") from None
        if size[0] < 1 or size[1] < 6:
            raise ValueError(f"{part!r}: need at least 1 request and 6 offers (one per kind)")
        sizes.append(size)
    return sizes


def run_benchmark(
    sizes: list[tuple[int, int]],
    *,
    seed: int,
    time_limit: float | None,
    reference: bool = False,
    echo: Callable[[str], None] = print,
) -> list[dict]:
    """Generate, solve with both methods in fresh processes, print a table; return the rows."""
    from .generator import generate
    from .instance_format import instance_to_json

    header = (
        f"{'size':>14} {'pairs':>9} {'method':<8} {'wall s':>7} {'peak MiB':>9} "
        f"{'objective':>11} {'bound':>11} {'gap':>7} {'of bound':>8} "
        f"{'fulfil':>7} {'util':>6} {'Jain':>6}"
    )
    if reference:
        header += (f" {'LP opt':>11} {'of LP':>7} {'plain LP':>11} {'of plain':>8}"
                   f" {'MIP bound':>11} {'of MIP':>7}")
    echo(header)
    rows = []
    for n_requests, n_offers in sizes:
        instance = generate(n_requests, n_offers, seed)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "instance.json")
            with open(path, "w", encoding="utf-8") as file:
                json.dump(instance_to_json(instance), file)
            del instance
            engine = _run_worker("engine", path, time_limit)
            baseline = _run_worker("greedy", path, None)
            exact = _run_worker("reference", path, None) if reference else None
        bound = engine["bound"]
        for name, run in (("engine", engine), ("greedy", baseline)):
            row = {"size": f"{n_requests}x{n_offers}", "method": name, **run, "bound": bound}
            row["of_bound"] = _share(run["objective"], bound)
            rows.append(row)
            line = (
                f"{row['size']:>14} {run['pairs']:>9} {name:<8} {run['wall_seconds']:>7.2f} "
                f"{run['peak_mib']:>9.0f} {run['objective']:>11.2f} {bound:>11.2f} "
                f"{1 - row['of_bound']:>7.2%} {row['of_bound']:>8.2%} "
                f"{run['fulfilment']:>7.1%} {run['utilisation']:>6.1%} {run['jain']:>6.3f}"
            )
            if exact is not None:
                row["lp"], row["plain_lp"] = exact["lp"], exact["plain_lp"]
                row["of_lp"] = _share(run["objective"], exact["lp"]["bound"])
                row["of_plain_lp"] = _share(run["objective"], exact["plain_lp"]["bound"])
                line += (f" {exact['lp']['bound']:>11.2f} {row['of_lp']:>7.2%}"
                         f" {exact['plain_lp']['bound']:>11.2f} {row['of_plain_lp']:>8.2%}")
                row["mip"] = exact["mip"]
                if exact["mip"] is None:
                    line += f" {'—':>11} {'—':>7}"
                else:
                    row["of_mip"] = _share(run["objective"], exact["mip"]["bound"])
                    line += f" {exact['mip']['bound']:>11.2f} {row['of_mip']:>7.2%}"
            echo(line)
    return rows


def _share(objective: float, bound: float) -> float:
    return objective / bound if bound > 0 else 1.0


def _run_worker(method: str, path: str, time_limit: float | None) -> dict:
    command = [sys.executable, "-m", "broker.matching.bench", _WORKER, method, path]
    if time_limit is not None:
        command += ["--time-limit", str(time_limit)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{method} worker failed:\n{completed.stderr}")
    return json.loads(completed.stdout)


def _worker(method: str, path: str, time_limit: float | None) -> dict:
    """Load, solve, measure — in this fresh process."""
    import resource
    import time

    from . import greedy, load_instance, solve
    from .engine import lp_optimum, mip_optimum

    with open(path, encoding="utf-8") as file:
        instance = load_instance(json.load(file))
    if method == "reference":
        return {"lp": lp_optimum(instance), "plain_lp": lp_optimum(instance, plain=True),
                "mip": mip_optimum(instance, _MIP_SECONDS, _MIP_MAX_PAIRS)}
    started = time.perf_counter()
    result = solve(instance, time_limit=time_limit) if method == "engine" else greedy(instance)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "wall_seconds": wall,
        "peak_mib": peak_kib / 1024,
        "objective": result.objective,
        "bound": result.stats.get("bound"),
        "pairs": result.stats.get("compatible_pairs"),
        **quality(instance, result),
    }


def quality(instance, result) -> dict:
    """Fulfilment (mean granted / asked over requests), utilisation (share of each kind's
    supply allocated, averaged over kinds) and Jain's fairness index over startups' mean
    fulfilment."""
    granted: dict[str, float] = {}
    for a in result.allocations:
        granted[a.request] = granted.get(a.request, 0.0) + a.quantity
    ratios = {r.id: granted.get(r.id, 0.0) / r.quantity for r in instance.requests}
    fulfilment = sum(ratios.values()) / len(ratios) if ratios else 0.0

    supply: dict[str, float] = {}
    kind_of_offer = {}
    for o in instance.offers:
        supply[o.kind] = supply.get(o.kind, 0.0) + o.available
        kind_of_offer[o.id] = o.kind
    used: dict[str, float] = {}
    for a in result.allocations:
        kind = kind_of_offer[a.offer]
        used[kind] = used.get(kind, 0.0) + a.quantity
    shares = [used.get(k, 0.0) / s for k, s in sorted(supply.items()) if s > 0]
    utilisation = sum(shares) / len(shares) if shares else 0.0

    per_startup: dict[str, list[float]] = {}
    for r in instance.requests:
        per_startup.setdefault(r.startup, []).append(ratios[r.id])
    x = [sum(v) / len(v) for _, v in sorted(per_startup.items())]
    squares = sum(v * v for v in x)
    jain = (sum(x) ** 2) / (len(x) * squares) if squares > 0 else 1.0
    return {"fulfilment": fulfilment, "utilisation": utilisation, "jain": jain}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == _WORKER:
        method, path = argv[1], argv[2]
        time_limit = float(argv[4]) if len(argv) > 4 and argv[3] == "--time-limit" else None
        print(json.dumps(_worker(method, path, time_limit)))
        return
    from .cli import bench_match_command

    bench_match_command.main(args=argv, prog_name="broker bench match")


if __name__ == "__main__":
    main()
