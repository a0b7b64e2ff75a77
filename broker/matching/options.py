"""What a solve may be tuned by, and the one clock it runs against.

`EngineOptions` holds every tunable of `engine.solve` (tests set these, never module
globals); `TimeBudget` is the time limit and when the solve started, and hands each phase
what it may use: the limit less a `Reserve` for the phases after it, one formula for all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .polish import ONE_LANE_COLUMNS


@dataclass(frozen=True)
class Reserve:
    """Time kept back for what follows a phase: a share of the limit, or seconds per
    request if that is more (a big instance's repair and rounding outgrow any share)."""

    share: float
    seconds_per_request: float


@dataclass(frozen=True)
class EngineOptions:
    # Cheapest compatible offers per request that start the column generation (beside the
    # greedy answers' own pairs).
    initial_cheapest: int = 1
    # Up to this many compatible pairs the whole LP is solved at once (10k × 1k: 150k pairs,
    # ≈ 1.5 s); above it, the large path: max flow, market blocks, per-kind blocks
    # (100k × 10k: 1.5M pairs).
    whole_lp_max_pairs: int = 400_000
    # Below this many seconds left, per-kind LP blocks are not started.
    min_block_seconds: float = 8.0
    # Pairs per market block: six blocks of ≈ 17k requests at 100k, ≈ 2.5 s of simplex each
    # (see the table in `blocks.market_blocks`).
    block_pairs: int = 256_000
    # Rounds of market blocks at most (each over a different partition of the startups).
    market_rounds: int = 3
    # A block's column generation stops once the columns it lacks could add less than this
    # share of its objective (the bound prices every pair anyway, so this only costs answer).
    block_gain_tolerance: float = 1e-6
    # Batches of the max-flow greedy whose prices give the bound on the large path (≈ 0.4 s
    # each at 1.5M pairs; more batches, tighter prices).
    flow_batches: int = 24
    # Support size up to which the polish runs the kinds one after the other (polish.py).
    polish_one_lane_columns: int = ONE_LANE_COLUMNS
    # Kept back from the LP for the repairs, rounding, moving to cheaper offers and reasons
    # (≈ 6–12 s at 100k requests on a busy machine).
    after_lp: Reserve = field(default_factory=lambda: Reserve(0.2, 1.3e-4))
    # Kept back after the market blocks for the bound, the repair, the polish, rounding,
    # moving to cheaper offers and reasons (at 100k requests: ≈ 0.4 + 1.3 + 4–5 + 2.7 s).
    after_market_blocks: Reserve = field(default_factory=lambda: Reserve(0.1, 1.1e-4))
    # Kept back after the polish: rounding, moving to cheaper offers, reasons (≈ 2.7 s at 100k).
    after_polish: Reserve = field(default_factory=lambda: Reserve(0.1, 4e-5))


DEFAULT_OPTIONS = EngineOptions()


class TimeBudget:
    """A solve's time limit (None: no limit) from the moment it was made, in
    `time.perf_counter` seconds, which is also what the block solvers compare deadlines with."""

    def __init__(self, limit: float | None, n_requests: int = 0,
                 started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.limit = limit
        self.n_requests = n_requests

    def reserved(self, reserve: Reserve) -> float:
        assert self.limit is not None
        return max(reserve.share * self.limit, reserve.seconds_per_request * self.n_requests)

    def seconds_left(self, reserve: Reserve, at_least: float = 0.0) -> float | None:
        """Seconds from now a phase may use, keeping `reserve` back (never below `at_least`)."""
        if self.limit is None:
            return None
        return max(at_least, self.limit - self.reserved(reserve) - (time.perf_counter() - self.started))

    def deadline(self, reserve: Reserve) -> float | None:
        """The `time.perf_counter` moment a phase must end by, keeping `reserve` back."""
        if self.limit is None:
            return None
        return self.started + self.limit - self.reserved(reserve)

    def elapsed(self) -> float:
        """Seconds since the solve started, to the millisecond (as the stats record them)."""
        return seconds_since(self.started)


def seconds_since(t: float) -> float:
    """Seconds since the `time.perf_counter` moment `t`, to the millisecond, as the stats record them."""
    return round(time.perf_counter() - t, 3)


__all__ = ["DEFAULT_OPTIONS", "EngineOptions", "Reserve", "TimeBudget", "seconds_since"]
