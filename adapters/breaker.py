"""A small, thread-safe circuit breaker: after `fail_max` carrier faults in a row, fail fast.

We don't use pybreaker here: its `call` holds one lock for the whole wrapped call, which would
serialise every request to a carrier, and it can't be given a clock for tests.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class CircuitBreaker:
    """closed → (fail_max faults) → open → (reset_timeout) → half-open: one trial call."""

    def __init__(
        self,
        fail_max: int,
        reset_timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only one trial call is let through."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half-open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._trial_running = False
            self._failures += 1
            if self._opened_at is not None or self._failures >= self.fail_max:
                # A failed trial re-opens for a full reset_timeout.
                self._opened_at = self._clock()

    def release_trial(self) -> None:
        """End a trial call that neither succeeded nor failed on the carrier's side."""
        with self._lock:
            self._trial_running = False
