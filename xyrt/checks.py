"""Checks of plain option values shared by the Python API and the command line.

Each raises `XyrtError` naming the option, what it received and what it expects.
"""

from __future__ import annotations

import math
import os

from xyrt.errors import XyrtError, received

THREADS_PER_CORE = 4  # more threads than this per usable core only adds contention


def finite(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    strict_low: bool = False,
) -> float:
    """``value`` as a finite float (bools refused), within [low, high] (``strict_low``: > low)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        try:
            import numpy as np

            ok = isinstance(value, (np.integer, np.floating))
        except ImportError:  # pragma: no cover - numpy is a base dependency
            ok = False
    if not ok or not math.isfinite(float(value)):
        raise XyrtError(f"{name} must be a finite number, got {received(value)}")
    x = float(value)
    if low is not None and (x <= low if strict_low else x < low):
        raise XyrtError(f"{name} must be {'>' if strict_low else '>='} {low:g}, got {x:g}")
    if high is not None and x > high:
        raise XyrtError(f"{name} must be <= {high:g}, got {x:g}")
    return x


def positive_int(value: object, name: str) -> int:
    """``value`` when it is an integer >= 1 (a bool, a float such as 1.5 or a string such as
    '4' is refused, not converted)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise XyrtError(f"{name} must be an integer >= 1, got {received(value)}")
    return value


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """The most CPU threads an inference option accepts on this machine."""
    return THREADS_PER_CORE * usable_cores()


def threads(value: object, name: str = "threads") -> int | None:
    """A thread count: None (all cores) or an integer in 1..`max_threads()`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise XyrtError(f"{name} must be an integer number of threads, got {received(value)}")
    if value < 1:
        raise XyrtError(f"{name} must be at least 1, got {value}")
    limit = max_threads()
    if value > limit:
        raise XyrtError(
            f"{name} must be at most {limit} ({THREADS_PER_CORE} per usable CPU core, "
            f"{usable_cores()} here), got {value}"
        )
    return value
