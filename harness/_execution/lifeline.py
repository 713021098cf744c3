"""A worker (or probe) process and everything it forked die with the controller.

The controller may end in a way it cannot clean up after (``SIGKILL``, an
OOM kill), and a worker's case may have threads that never return or forked
children that never exit.  So each process the controller starts runs a
daemon thread that watches its parent pid and, once the controller is gone,
kills the process's whole group (the supervisor starts each in a session of
its own, so the group is the worker and whatever its server forked) — within
``POLL`` seconds, whatever the other threads are doing.

Not ``prctl(PR_SET_PDEATHSIG)``: the kernel would SIGKILL the worker alone,
before this thread could end its group, and it ties a child to the *thread*
that forked it, so a ``ForkingMixIn`` child would die with the serving thread.
What this cannot stop: a process that left the group (``setsid``), or a
worker whose threads all hold the GIL forever.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

from harness._runtime.tempdirs import LEDGER, end_ledger, remove_listed

#: Seconds between looks at the parent pid.
POLL = 0.2


def tie_to_parent(parent: int, leftovers: str | None = None) -> None:
    """End this process's group as soon as ``parent`` is no longer our parent.

    ``leftovers`` is a directory to remove first (the worker's own, with the
    case directories its ledger lists, which the dead controller cannot remove).
    """
    if os.getppid() != parent:  # the parent died before we got here
        _end_group(leftovers)
    watcher = threading.Thread(
        target=_watch, args=(parent, leftovers), name="sockspec-lifeline", daemon=True
    )
    watcher.start()


def _watch(parent: int, leftovers: str | None) -> None:
    while os.getppid() == parent:
        time.sleep(POLL)
    _end_group(leftovers)


def _end_group(leftovers: str | None) -> None:
    """Remove ``leftovers``, then kill this process's whole group (the worker and
    what it forked), itself included."""
    if leftovers:
        end_ledger()  # a case still running must not make a directory after the sweep
        remove_listed(os.path.join(leftovers, LEDGER))
        shutil.rmtree(leftovers, ignore_errors=True)
    try:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    except OSError:
        pass
    os._exit(70)
