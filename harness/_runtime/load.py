"""How many CPUs this process has, and how loaded the host is: waits sized for an
idle machine stretch by that much."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (the default of ``--jobs``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def load_allowance(cap: float) -> float:
    """How many times longer than on an idle host work may take here: the 1-minute
    load average per usable CPU, from 1 (idle, or no load average) to ``cap``."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (not Linux): idle
        return 1.0
    return min(cap, max(1.0, load / usable_cpus()))
