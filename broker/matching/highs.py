"""The one way the engine makes a HiGHS solver: quiet, and never on standard output.

highspy 1.16 prints its banner ("Running HiGHS 1.16.0 …") on stdout, from C++, the first time
a solver is constructed in a process, before any option can be set. Whatever else prints on
stdout (`broker match` prints its answer as JSON there) is then corrupted. So the first solver
of a process is built with file descriptor 1 pointing at descriptor 2: the banner goes to
stderr. C's stdio buffer is flushed before descriptor 1 is put back, so nothing buffered
leaks out later. Only that first construction is redirected, under a lock, for a moment.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any

_lock = threading.Lock()
_first_built = False


def new_highs() -> Any:
    """A `highspy.Highs` with its log off; its banner, if any, went to stderr."""
    import highspy  # heavy: loaded only when a solve actually needs it

    global _first_built
    with _lock:
        if _first_built:
            h = highspy.Highs()
        else:
            h = _with_stdout_on_stderr(highspy.Highs)
            _first_built = True
    h.setOptionValue("output_flag", False)
    return h


def _with_stdout_on_stderr(build: Any) -> Any:
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no stdout to protect (closed, or a detached process)
        return build()
    try:
        os.dup2(2, 1)
        try:
            return build()
        finally:
            _flush_c_stdio()
            os.dup2(saved, 1)
    finally:
        os.close(saved)


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - every libc has fflush
        pass
