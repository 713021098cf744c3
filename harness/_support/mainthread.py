"""Calls made in the main thread of a forked child: where signal handlers run.

A scenario runs in a thread of the worker, and Python runs signal handlers
only in a process's main thread: a signal elsewhere makes ``select()`` retry
(PEP 475) and never reaches the server loop.  ``in_main_thread(fn, timeout)``
forks; in the child the forking thread is the only one, so it *is* the main
thread (CPython re-designates it after ``fork()``), and ``fn()`` can install a
handler and arm a timer around a server call.  The child's lifecycle events
reach the case's log as a forking server's do; ``fn``'s return value (or
exception) comes back pickled through a pipe.  The child is always reaped: it
is killed when it outlives ``timeout``, and it never returns into the harness.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

#: What a child that could not report says (killed, or died before writing).
NO_REPORT = "no report"


class ChildCall(NamedTuple):
    """How a call in a child's main thread ended."""

    status: str  # "returned", "raised", "timeout" or NO_REPORT
    value: Any  # fn()'s return value, or "Type: message" when it raised
    elapsed: float  # seconds from fork to the child being reaped
    exit_status: int  # os.waitpid()'s status (a signal number when killed)
    pid: int  # the child's, as its lifecycle events carry it


def in_main_thread(fn: Callable[[], Any], timeout: float) -> ChildCall:
    """Run ``fn()`` in the main thread of a forked child; see the module docstring.

    ``fn`` must return something picklable.  Waits at most ``timeout`` for the
    child's report, then kills it (status ``"timeout"``).
    """
    read_end, write_end = os.pipe()
    started = time.monotonic()
    with warnings.catch_warnings():
        # 3.12+ warns that forking a threaded process may deadlock: the child
        # takes no lock another thread may hold (the event log writes datagrams).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is saved by os._exit
        _child(fn, read_end, write_end)
    os.close(write_end)
    try:
        payload, complete = _read_all(read_end, started + timeout)
    finally:
        os.close(read_end)
    if not complete:
        os.kill(pid, signal.SIGKILL)
    exit_status = _reap(pid, started + (timeout if complete else 0) + 5.0)
    elapsed = time.monotonic() - started
    if not complete:
        return ChildCall("timeout", None, elapsed, exit_status, pid)
    try:
        status, value = pickle.loads(payload)
    except Exception:  # an empty or cut report: the child died before writing it
        return ChildCall(NO_REPORT, None, elapsed, exit_status, pid)
    return ChildCall(status, value, elapsed, exit_status, pid)


def _child(fn: Callable[[], Any], read_end: int, write_end: int) -> None:
    """The child's whole life: call, report, leave with ``os._exit`` (never return)."""
    code = 1
    try:
        os.close(read_end)
        try:
            report: tuple[str, Any] = ("returned", fn())
        except BaseException as exc:  # reported, never propagated into the harness
            report = ("raised", f"{type(exc).__name__}: {exc}")
        try:
            payload = pickle.dumps(report)
        except Exception as exc:
            payload = pickle.dumps(("raised", f"unpicklable result: {exc}"))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]
        code = 0
    finally:
        os._exit(code)


def _read_all(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything until EOF, and whether EOF came before ``deadline``."""
    chunks: list[bytes] = []
    poller = select.poll()  # no FD_SETSIZE limit: the pipe may be numbered high
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        if not poller.poll(max(1, int(left * 1000))):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _reap(pid: int, deadline: float) -> int:
    """``waitpid`` the child, polling until ``deadline``; SIGKILL it if still there."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.005)
