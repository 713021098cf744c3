"""Measurements for the concurrency scenarios: spans, children, threads, closing.

What the mix-ins promise is about *when* and *where* handlers run and what is
left afterwards, so these helpers read it from the event log (timestamps are
``time.monotonic()``, comparable across forked children), from the process
table (``psutil``: a child that is still ours, running or a zombie) and from
the garbage collector (objects of the implementation's and ``threading``'s
classes still alive, such as ended handler threads somebody keeps).  None of
them raises for a violation; scenarios judge.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import psutil

from ._eventlog import HARNESS_THREAD_PREFIX

if TYPE_CHECKING:
    from ._context import Context
    from ._serverhandle import ServerHandle

__all__ = [
    "BackgroundClose",
    "child_states",
    "handle_spans",
    "handler_pids",
    "live_children",
    "live_instances",
    "max_overlap",
    "request_ends",
    "wait_children",
]

#: The hooks whose return ends a request's work (its handler thread or child).
_TAIL_HOOKS = ("finish", "shutdown_request", "close_request")


def handle_spans(ctx: Context) -> list[tuple[float, float, int]]:
    """``(start, end, conn)`` of every ``handle()`` that returned or raised, by start."""
    starts: dict[int, float] = {}
    spans = []
    for event in ctx.events("handle"):
        if event.conn is None:
            continue
        if event.phase == "call":
            starts[event.conn] = event.t
        elif event.conn in starts:
            spans.append((starts.pop(event.conn), event.t, event.conn))
    return sorted(spans)


def max_overlap(spans: Iterable[tuple[float, float, int]]) -> int:
    """The largest number of spans open at one instant."""
    edges = sorted(e for s, t, _ in spans for e in ((s, 1), (t, -1)))
    # At equal times an end sorts before a start (-1 < 1): touching is not overlapping.
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def handler_pids(ctx: Context) -> set[int]:
    """Pids, other than the harness's own, in which a ``handle()`` started."""
    owner = ctx.log.owner_pid
    return {e.pid for e in ctx.events("handle") if e.phase == "call" and e.pid != owner}


def request_ends(ctx: Context) -> dict[int, float]:
    """Per connection, when its handler's thread or child process last returned from a hook.

    For a threading server that is the handler thread's last hook; for a
    forking server the child's.  Events of the serving thread are ignored.
    """
    owner = ctx.log.owner_pid
    events = ctx.events()
    serving = {e.thread_id for e in events if e.name == "serve_forever" and e.pid == owner}
    ends: dict[int, float] = {}
    for event in events:
        in_worker = event.pid != owner or event.thread_id not in serving
        if event.conn is not None and event.name in _TAIL_HOOKS and in_worker:
            ends[event.conn] = max(ends.get(event.conn, 0.0), event.t)
    return ends


def child_states(pids: Iterable[int]) -> dict[int, str]:
    """Status (``'zombie'``, ``'sleeping'``...) of those ``pids`` still children of ours.

    A pid that is absent has been reaped (or was never ours).
    """
    wanted = set(pids)
    out: dict[int, str] = {}
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return out
    for child in children:
        if child.pid in wanted:
            try:
                out[child.pid] = child.status()
            except psutil.Error:
                continue
    return out


def live_children() -> list[int]:
    """Pids of this process's children that are running (not zombies)."""
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return []
    out = []
    for child in children:
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


class BackgroundClose:
    """``handle.close()`` (shutdown and ``server_close()``) running in a harness thread.

    Lets a scenario see whether ``server_close()`` returns while handlers are
    still busy: ``wait(window)`` says whether it has returned yet; ``error`` is
    what ``close()`` raised (a ``Hang`` past ``timeout``), if anything.
    """

    def __init__(self, handle: ServerHandle, timeout: float) -> None:
        self.error: BaseException | None = None
        self._done = threading.Event()

        def run() -> None:
            try:
                handle.close(timeout)
            except BaseException as exc:
                self.error = exc
            finally:
                self._done.set()

        self._thread = threading.Thread(
            target=run, name=f"{HARNESS_THREAD_PREFIX}close", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """True once ``close()`` has returned (or raised), waiting up to ``timeout``."""
        return self._done.wait(timeout)
