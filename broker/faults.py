"""Named points where a crash test may kill the process (only when the test asks)."""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    """SIGKILL this process here if BROKER_FAULT_INJECT names this point."""
    if os.environ.get("BROKER_FAULT_INJECT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
