"""Resource accounting: descriptors, threads and child processes of this process.

A snapshot is taken before a case and compared after it.  Differences that do
not go away within a short grace period are leaks: findings against the
implementation when they are the server's, bugs of the harness otherwise.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import psutil

from harness._model.records import Finding
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX
from harness._runtime.limits import open_fds


@dataclass(frozen=True)
class ResourceSnapshot:
    """Open descriptors (fd → target), live threads (ident → name) and children."""

    fds: dict[int, str]
    threads: dict[int, str]
    children: dict[int, str]  # pid -> psutil status ('zombie', 'sleeping', ...)


def take_snapshot() -> ResourceSnapshot:
    """Read the current resources of this process."""
    return ResourceSnapshot(fds=_fds(), threads=_threads(), children=_children())


def _fds() -> dict[int, str]:
    """Open descriptors, but for files under ``/proc``: psutil reads ``/proc/PID/stat``
    in the harness's own threads (a client's watch asking about child processes),
    and one caught open is the harness's passing read, not a server's leak."""
    return {fd: target for fd, target in open_fds().items() if not target.startswith("/proc/")}


def _threads() -> dict[int, str]:
    return {
        t.ident: t.name
        for t in threading.enumerate()
        if t.ident is not None and t.is_alive() and not t.name.startswith(HARNESS_THREAD_PREFIX)
    }


def live_children() -> bool:
    """Whether this process has a child that is not a zombie (one that may be at work)."""
    return bool(live_child_pids())


def live_child_pids() -> list[int]:
    """This process's children (and theirs) that are not zombies."""
    return [pid for pid, status in _children().items() if status != psutil.STATUS_ZOMBIE]


def _children() -> dict[int, str]:
    out: dict[int, str] = {}
    for child in child_processes(recursive=True):
        try:
            out[child.pid] = child.status()
        except psutil.Error:
            continue
    return out


def child_processes(recursive: bool = False) -> list[psutil.Process]:
    """This process's children (and theirs, ``recursive``); none at once, without
    reading the process table, when it has no child at all (``has_children``)."""
    if not has_children():
        return []
    try:
        children: list[psutil.Process] = psutil.Process().children(recursive=recursive)
    except psutil.Error:
        return []
    return children


def has_children() -> bool:
    """Whether this process has a child at all, zombies included.

    Asked before every scan: psutil finds children by reading every process's
    ``/proc/PID/stat`` (milliseconds on a busy host, several times a case), while
    most cases never fork. Without a child there is no descendant either: an
    orphaned grandchild belongs to init, not to us. Reaps nothing (``WNOWAIT``).
    """
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # not on every platform: scan
        return True
    try:
        # Any child at all answers (None while none has exited); only none raises.
        waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except OSError:
        return True
    return True


@dataclass(frozen=True)
class Leaks:
    """What is left over after a case, compared with the snapshot before it."""

    fds: dict[int, str]
    threads: dict[int, str]
    children: dict[int, str]

    def __bool__(self) -> bool:
        return bool(self.fds or self.threads or self.children)

    def by_kind(self) -> dict[str, list[str]]:
        """What is left, without numbers: descriptor targets, thread names, child statuses."""
        return {
            "fds": list(self.fds.values()),
            "threads": list(self.threads.values()),
            "children": [str(s) for s in self.children.values()],
        }


def diff(
    before: ResourceSnapshot, after: ResourceSnapshot, ignore_fds: Iterable[int] = ()
) -> Leaks:
    """Resources present in ``after`` that were not in ``before``."""
    ignored = set(ignore_fds)
    fds = _new_fds(before.fds, after.fds, ignored)
    threads = {i: n for i, n in after.threads.items() if i not in before.threads}
    children = {p: s for p, s in after.children.items() if p not in before.children}
    return Leaks(fds=fds, threads=threads, children=children)


def _new_fds(before: dict[int, str], after: dict[int, str], ignored: set[int]) -> dict[int, str]:
    """Descriptors of ``after`` that are not in ``before``, by number and target.

    One that merely moved is not new: an object ``before`` had at a number now
    closed, found at another number (``anon_inode:[eventpoll]`` has no identity
    but its kind).  gevent's libev, for one, replaces its epoll descriptor when
    a forked child keeps a descriptor registered in it open.
    """
    gone = Counter(t for fd, t in before.items() if fd not in ignored and after.get(fd) != t)
    fds = {}
    for fd, target in sorted(after.items()):
        if fd in ignored or before.get(fd) == target:
            continue
        if gone[target]:
            gone[target] -= 1
            continue
        fds[fd] = target
    return fds


#: Seconds descriptors alone may stay unchanged before ``settle`` calls them leaked.
#: With no thread or child of the case left and garbage collected, no code of the
#: case can close one any more: this is a margin, not a wait for anything.
QUIET = 0.15


def settle(
    before: ResourceSnapshot,
    grace: float,
    ignore_fds: Iterable[int] = (),
    pinned: Callable[[], Collection[int]] = frozenset,
    quiet: float = QUIET,
) -> Leaks:
    """Wait up to ``grace`` seconds for leftovers to go away; return what remains.

    Threads and children wind down asynchronously after ``server_close()``,
    so a deadline-bounded poll is the honest way to tell "slow" from "leaked".
    Once only descriptors are left, with no new thread or child to act on
    them, only garbage collection can still close one: after a collection,
    the same descriptors left for ``quiet`` seconds are leaked (a server that
    keeps its connections costs that, not the whole grace, on every case).
    ``pinned()`` names descriptors that cannot go away by waiting (sockets the
    server objects still hold: a listening socket that ``server_close()`` left
    open, requests kept): when they are all that is left, the wait ends at once.
    """
    ignored = tuple(ignore_fds)
    deadline = time.monotonic() + grace
    fds_only: tuple[dict[int, str], float] | None = None  # (descriptors, since when)
    while True:
        leaks = diff(before, take_snapshot(), ignored)
        now = time.monotonic()
        if not leaks or now >= deadline:
            return leaks
        if leaks.threads or leaks.children:
            fds_only = None
        elif set(leaks.fds) <= set(pinned()):
            return leaks
        elif fds_only is None or fds_only[0] != leaks.fds:
            if fds_only is None:
                gc.collect()  # a socket in a reference cycle closes only now
            fds_only = (leaks.fds, now)
        elif now - fds_only[1] >= quiet:
            return leaks
        time.sleep(0.01)


def leak_findings(leaks: Leaks) -> list[Finding]:
    """Turn leftovers into findings of the ``resources`` check."""
    findings = []
    if leaks.fds:
        findings.append(
            Finding(
                check="resources.fds",
                message=f"{len(leaks.fds)} descriptor(s) left open after the case",
                expected="no descriptors opened by the case remain",
                observed=", ".join(f"fd {fd} → {t}" for fd, t in sorted(leaks.fds.items())[:20]),
            )
        )
    if leaks.threads:
        findings.append(
            Finding(
                check="resources.threads",
                message=f"{len(leaks.threads)} thread(s) still running after server_close()",
                expected="every handler thread has ended",
                observed=", ".join(sorted(leaks.threads.values())[:20]),
            )
        )
    zombies = {p: s for p, s in leaks.children.items() if s == psutil.STATUS_ZOMBIE}
    alive = {p: s for p, s in leaks.children.items() if s != psutil.STATUS_ZOMBIE}
    if zombies:
        findings.append(
            Finding(
                check="resources.zombies",
                message=f"{len(zombies)} child process(es) left unreaped (zombies)",
                expected="every forked child reaped",
                observed=", ".join(str(p) for p in sorted(zombies)),
            )
        )
    if alive:
        findings.append(
            Finding(
                check="resources.children",
                message=f"{len(alive)} child process(es) still running after the case",
                expected="no child processes remain",
                observed=", ".join(f"{p} ({s})" for p, s in sorted(alive.items())),
            )
        )
    return findings


def reap_and_kill(children: Iterable[int]) -> None:
    """Clean up after a leaky implementation: kill and reap the given children."""
    for pid in children:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        except OSError:
            pass
