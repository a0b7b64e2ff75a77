"""`broker match` and `broker bench match`: plain click commands, no Flask app needed."""

from __future__ import annotations

import json
import sys

import click


@click.command("match")
@click.argument("instance", type=click.Path(allow_dash=True, dir_okay=False))
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds the solver may take; the answer is feasible whenever it stops.",
)
def match_command(instance: str, time_limit: float | None) -> None:
    """Match the requests of INSTANCE (a JSON file, or - for stdin) to its offers."""
    from . import InstanceError, load_instance, result_to_json, solve

    try:
        if instance == "-":
            text = sys.stdin.read()
        else:
            with open(instance, encoding="utf-8") as file:
                text = file.read()
    except OSError as error:
        _fail(f"cannot read {instance}: {error.strerror or error}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        _fail(f"{instance}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
    try:
        loaded = load_instance(data)
    except InstanceError as error:
        _fail(f"{instance}: {error}")
    result = solve(loaded, time_limit=time_limit)
    click.echo(json.dumps(result_to_json(result), indent=2, sort_keys=False))


@click.command("match")
@click.option(
    "--sizes",
    default="1000x100,10000x1000,100000x10000",
    show_default=True,
    help="Comma-separated REQUESTSxOFFERS instance sizes.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--time-limit", type=click.FloatRange(min=0, min_open=True), default=None,
    help="Time limit passed to the engine, per instance.",
)
@click.option(
    "--reference", is_flag=True,
    help="Also solve the LP relaxation to optimality, untimed, with and without the "
         "viable-pair tightening, and (up to 400k pairs) the exact MIP, and show each "
         "answer's share of them. Slow: ≈ 1 min at 10k, ≈ 70 s more at 100k.",
)
def bench_match_command(sizes: str, seed: int, time_limit: float | None,
                        reference: bool) -> None:
    """Benchmark the engine against the priority greedy on generated district instances."""
    from .bench import parse_sizes, run_benchmark

    try:
        parsed = parse_sizes(sizes)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--sizes") from None
    run_benchmark(parsed, seed=seed, time_limit=time_limit, reference=reference,
                  echo=click.echo)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
