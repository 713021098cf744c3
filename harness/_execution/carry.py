"""Carrying on after a repeated hang: when a worker may run more cases.

A hang leaves threads stuck in the implementation that cannot be stopped, so
the worker that ran it is normally retired and a fresh one started (a quarter
of a second of CPU or more each: on an implementation where every case hangs,
the restarts cost more than the cases).  A hang judged with a *shortened*
deadline is a symptom already seen: its threads are stuck the way earlier
cases' were, parked, and each later case measures leaks against its own
starting snapshot.  Such a worker carries on, until it holds too much:
``CARRY_CASES`` carried hangs, or ``CARRY_FDS`` descriptors or
``CARRY_THREADS`` threads more than it had when it was ready.

Python 3.7 compatible (workers may run old interpreters).
"""

from __future__ import annotations

import os
import threading

from harness._model.records import CaseResult, Verdict

#: At most this many carried hangs per worker.
CARRY_CASES = 32

#: Retire once this many more descriptors are open than when the worker was ready.
CARRY_FDS = 128

#: Retire once this many more threads run than when the worker was ready.
CARRY_THREADS = 64

FD_DIR = "/proc/self/fd"


def open_fds() -> int:
    """Descriptors open in this process, or -1 where that cannot be counted."""
    try:
        return len(os.listdir(FD_DIR))
    except OSError:
        return -1


class CarryBudget:
    """What a worker may still hold of earlier hangs before it must be retired."""

    def __init__(self) -> None:
        self.fds = open_fds()
        self.threads = threading.active_count()
        self.carried = 0

    def carry(self, result: CaseResult) -> bool:
        """True if the worker may go on after ``result``, a case that left it tainted."""
        if result.verdict is not Verdict.HANG or not result.evidence.get("deadline_shortened"):
            return False  # a first hang, or a crash: the stuck state is unknown
        fds = open_fds()
        if self.fds < 0 or fds < 0 or fds - self.fds > CARRY_FDS:
            return False
        if threading.active_count() - self.threads > CARRY_THREADS:
            return False
        if self.carried >= CARRY_CASES:
            return False
        self.carried += 1
        return True
