"""A worker (or probe) process dies with the controller that started it.

The controller may end in a way it cannot clean up after (``SIGKILL``, an
OOM kill), and a worker's case may have threads that never return.  So each
process the controller starts ties its own life to the controller's:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker
  the moment its parent dies, whatever its threads are doing;
* every child the worker forks (a ``ForkingMixIn`` server's handlers) gets the
  same tie to the worker (``os.register_at_fork``), so the whole tree goes;
* elsewhere, and as a fallback for the instant before ``prctl`` took effect, a
  daemon thread watches the parent pid and kills the worker's process group.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
_POLL = 0.25


def tie_to_parent(parent: int) -> None:
    """Make this process (and every child it forks) die when ``parent`` is gone."""
    _die_with_parent()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_die_with_parent)
    if os.getppid() != parent:  # the parent died before the tie was made
        _end_group()
    watcher = threading.Thread(target=_watch, args=(parent,), name="sockspec-lifeline", daemon=True)
    watcher.start()


def _die_with_parent() -> bool:
    """Ask the kernel for SIGKILL when our parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL)
    _end_group()


def _end_group() -> None:
    """Kill this process's whole group (the worker and what it forked), then itself."""
    try:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    except OSError:
        pass
    os._exit(70)
