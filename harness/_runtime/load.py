"""How loaded the host is: waits sized for an idle machine stretch by this much."""

from __future__ import annotations

import os


def load_allowance(cap: float) -> float:
    """How many times longer than on an idle host work may take here: the 1-minute
    load average per usable CPU, from 1 (idle, or no load average) to ``cap``."""
    try:
        load = os.getloadavg()[0]
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no load average or affinity (not Linux): idle
        return 1.0
    return min(cap, max(1.0, load / max(1, cpus)))
