"""Where the worker's forked children are in the implementation's code.

A forking server (or a process pool) runs its handlers in child processes, whose
stacks ``sys._current_frames()`` cannot show.  A silent client of such a server
could be waiting for a handler still at work, or for one stuck for ever, and the
harness had to wait out the client's whole timeout to find out.

So every child forked from a worker (``os.register_at_fork``) answers
``ANSWER_SIGNAL`` by writing its own stack signature (``stack_signature``: the
implementation's function chains, ``CALLS_OUT`` marking a handler at work) to a
file in the worker's folder, and ``children_signature`` asks every live child.
A child that does not answer (it was exec'd, or its signal handlers cannot run),
one outside the implementation's code, and one running a handler hook cannot be
judged: then nothing is known, as before.

The signal's default action is to be ignored, so a child that never installed the
handler (exec'd, or asked in the instant after ``fork()``) is not harmed.
Nothing here runs unless the worker called ``arm``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import psutil

from harness._runtime.deadline import CALLS_OUT, chains, stack_signature
from harness._runtime.resources import live_child_pids

#: Ignored by default (unlike SIGUSR1/2, which would kill a child without the handler).
ANSWER_SIGNAL = signal.SIGWINCH

#: How long the worker waits for its children's answers (seconds): a child answers
#: as soon as its interpreter runs the handler, within milliseconds even if it waits
#: on a lock or in ``select()`` (both are interrupted and retried).
ANSWER_WAIT = 0.1

#: How often the worker looks for the answers (seconds).
_LOOK = 0.002

#: The worker's folder for answers (None: not armed) and the implementation's paths.
_armed: dict[str, Any] = {"folder": None, "paths": ()}

#: How long a child that did not answer is not asked again (seconds, scaled): each
#: ask of a child that never answers (an exec'd one) costs ANSWER_WAIT, but a child
#: may only have been slow (a loaded machine) or asked in the instant after fork.
MUTE_FOR = 2.0

#: Children that did not answer, with when they may be asked again.
_mute: dict[int, float] = {}


def arm(folder: str, impl_paths: Sequence[str]) -> None:
    """In the worker, once: every child forked from now on answers ``ANSWER_SIGNAL``
    with its stack signature, written under ``folder``."""
    if _armed["folder"] is None:
        os.register_at_fork(after_in_child=_install)
    _armed["folder"], _armed["paths"] = folder, tuple(impl_paths)


def _install() -> None:
    try:
        signal.signal(ANSWER_SIGNAL, _answer)
    except (ValueError, OSError):  # not the main thread of a green child: no answers
        pass


def _answer(signum: int, frame: Any) -> None:
    """In a child: write this process's stack signature where the worker looks."""
    folder = _armed["folder"]
    if folder is None:
        return
    path = _answer_path(folder, os.getpid())
    try:
        # Written aside, then renamed: the worker never reads half an answer.
        # Where the child was when the signal came, not this handler (a harness
        # frame past the implementation's would read as a handler at work).
        frames = sys._current_frames()
        if frame is not None:
            frames[threading.get_ident()] = frame
        with open(path + ".part", "w") as out:
            out.write(stack_signature(_armed["paths"], frames=frames))
        os.replace(path + ".part", path)
    except OSError:
        pass


def _answer_path(folder: str, pid: int) -> str:
    return os.path.join(folder, f"child-{pid}.stack")


def children_signature(scale: float = 1.0) -> str | None:
    """The stack signature of this process's live children: "" when there are none,
    their chains when each answered and is inside the implementation with no
    handler at work, None when any child cannot be judged (or nothing is armed)."""
    pids = live_child_pids()
    if not pids:
        return ""
    folder = _armed["folder"]
    if folder is None or _muted(folder, pids):
        return None
    for pid in pids:
        path = _answer_path(folder, pid)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        try:
            os.kill(pid, ANSWER_SIGNAL)
        except ProcessLookupError:
            continue  # gone meanwhile: no longer at work
    answers = _collect(folder, pids, ANSWER_WAIT * scale)
    if answers is None:
        return None
    found: set[str] = set()
    for text in answers:
        theirs = chains(text)
        if not theirs or any(chain.endswith(CALLS_OUT) for chain in theirs):
            return None  # outside the implementation's code, or a handler at work
        found |= theirs
    return " | ".join(sorted(found))


def _collect(folder: str, pids: Sequence[int], wait: float) -> list[str] | None:
    """The answers of ``pids`` (a child that exited meanwhile gives none), or None
    when a live child did not answer within ``wait``."""
    deadline = time.monotonic() + wait
    waiting, answers = set(pids), []
    while True:
        for pid in sorted(waiting):
            path = _answer_path(folder, pid)
            try:
                with open(path) as answer:
                    answers.append(answer.read())
                os.unlink(path)
            except FileNotFoundError:
                if _alive(pid):
                    continue
            waiting.discard(pid)
        if not waiting:
            return answers
        if time.monotonic() >= deadline:
            until = time.monotonic() + MUTE_FOR * wait / ANSWER_WAIT
            _mute.update(dict.fromkeys(waiting, until))
            return None
        time.sleep(_LOOK)


def _muted(folder: str, pids: Sequence[int]) -> bool:
    """Whether any of ``pids`` is still left alone after not answering; a child
    whose answer came late, or whose time is up, is asked again."""
    now = time.monotonic()
    # Waits of several threads ask at once: copies, and pops that may find nothing.
    for pid, until in list(_mute.items()):
        if pid not in pids or now >= until or os.path.exists(_answer_path(folder, pid)):
            _mute.pop(pid, None)  # gone (its pid may be reused), time up, or it answered
    return bool(_mute)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (neither gone nor a zombie)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
