"""The matching engine: plain data in, allocations out — no Flask, no database.

    instance = load_instance(json.load(file))   # validates; raises InstanceError
    result = solve(instance, time_limit=30)      # LP relaxation (HiGHS) + repair
    print(json.dumps(result_to_json(result)))
"""

from .engine import greedy, solve
from .instance_format import instance_to_json, load_instance, result_to_json
from .model import (
    REASONS,
    Allocation,
    Instance,
    InstanceError,
    Offer,
    Policy,
    Request,
    Result,
    Startup,
    Unfilled,
)

__all__ = [
    "REASONS",
    "Allocation",
    "Instance",
    "InstanceError",
    "Offer",
    "Policy",
    "Request",
    "Result",
    "Startup",
    "Unfilled",
    "greedy",
    "instance_to_json",
    "load_instance",
    "result_to_json",
    "solve",
]
