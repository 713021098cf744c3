"""Children and live objects: the process table and the garbage collector.

Read with ``psutil`` (a child that is still ours, running or a zombie) and the
garbage collector (objects of the implementation's and ``threading``'s classes
still alive, such as ended handler threads somebody keeps).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable

import psutil

from harness._runtime.resources import child_processes


def child_states(pids: Iterable[int]) -> dict[int, str]:
    """Status (``'zombie'``, ``'sleeping'``...) of those ``pids`` still children of ours.

    A pid that is absent has been reaped (or was never ours).
    """
    wanted = set(pids)
    out: dict[int, str] = {}
    for child in child_processes():
        if child.pid in wanted:
            try:
                out[child.pid] = child.status()
            except psutil.Error:
                continue
    return out


def live_children() -> list[int]:
    """Pids of this process's children that are running (not zombies)."""
    out = []
    for child in child_processes():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child.pid)
        except psutil.Error:
            continue
    return out


def wait_children(
    pids: Iterable[int], done: Callable[[dict[int, str]], bool], timeout: float
) -> dict[int, str]:
    """Poll ``child_states(pids)`` until ``done(states)`` or ``timeout``; the last states."""
    wanted = tuple(pids)
    deadline = time.monotonic() + timeout
    while True:
        states = child_states(wanted)
        if done(states) or time.monotonic() >= deadline:
            return states
        time.sleep(0.005)


def live_instances(modules: tuple[str, ...]) -> Counter[str]:
    """Live objects per class, for classes defined in ``modules`` (by module-name prefix).

    An object counts under the first class of its MRO that such a module
    defines (an instrumented handler under the implementation's handler
    class).  Garbage is collected first, so what is counted is held by
    something alive.
    """
    gc.collect()
    labels: dict[type, str | None] = {}
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        cls = type(obj)
        if cls not in labels:
            labels[cls] = _label(cls, modules)
        label = labels[cls]
        if label is not None:
            counts[label] += 1
    return counts


def _label(cls: type, modules: tuple[str, ...]) -> str | None:
    for klass in cls.__mro__:
        module = getattr(klass, "__module__", None)
        if isinstance(module, str) and module.startswith(modules):
            return f"{module}.{klass.__qualname__}"
    return None
