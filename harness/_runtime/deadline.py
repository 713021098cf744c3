"""Deadlines for calls into the implementation, and stack dumps when they pass.

A call that may block (``shutdown()``, ``server_close()``, ``handle_request()``)
runs in a helper thread; if it has not returned by its deadline the case ends
with ``Hang`` carrying a dump of every thread's stack.  The stuck thread cannot
be killed, so the process that ran it is retired by the supervisor.

``PhaseClock`` gives each phase of a case its own deadline (``_model.phases``)
and shortens it for a hang this implementation already showed: the shortened
deadline ends the phase only when the stacks show the same signature.
"""

from __future__ import annotations

import functools
import os
import selectors
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from types import CodeType, FrameType
from typing import Any, TypeVar

from harness._model.errors import Hang
from harness._model.phases import (
    CASE_PHASE,
    DEATH_PHASE,
    IDLE_POLLS,
    PHASE_DEADLINES,
    PROGRESS_POLL,
    QUICK_STALL_AFTER,
    QUICK_STALL_STEP,
    REPEAT_AFTER,
    STALL_AFTER,
    WAIT_PHASES,
    KnownHang,
    short_deadline,
)
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX
from harness._runtime.load import load_allowance

T = TypeVar("T")


def dump_stacks(ignore: Collection[int] = ()) -> str:
    """Every Python thread's current stack, labelled with its name; threads in
    ``ignore`` (stuck in earlier cases of a worker that carried on) are only counted."""
    names = {t.ident: (t.name, t.daemon) for t in threading.enumerate()}
    chunks = []
    frames = sys._current_frames()
    left_out = sum(1 for ident in frames if ident in ignore)
    if left_out:
        chunks.append(f"({left_out} threads stuck in earlier cases of this worker left out)")
    for ident, frame in frames.items():
        if ident in ignore:
            continue
        name, daemon = names.get(ident, ("<unknown>", False))
        header = f'Thread {ident:#x} "{name}"{" (daemon)" if daemon else ""}:'
        chunks.append(header + "\n" + "".join(traceback.format_stack(frame)))
    return "\n".join(chunks)


#: This package's folder: a frame in it, called from the implementation, is one of
#: the harness's hooks (and through it a scenario's handler code) at work.
HARNESS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep

#: A frame's file, resolved (cached: the waits of a case read every thread's stack
#: on each step, and the same few hundred files recur).
_real_path = functools.lru_cache(maxsize=4096)(os.path.realpath)

#: Marks a chain whose innermost implementation function has called back into the
#: harness (a handler hook at work), as opposed to one waiting in its own code.
CALLS_OUT = "+"


def stack_signature(
    impl_paths: Sequence[str],
    ignore: Collection[int] = (),
    frames: Mapping[int, FrameType] | None = None,
) -> str:
    """Where the implementation's code is, in every thread: its function chains.

    One ``outer>inner`` chain of the implementation's own functions per thread
    (files under ``impl_paths``), deduplicated and sorted; no line numbers or
    thread names, so the same stuck state gives the same signature in every
    case.  A chain ends in ``CALLS_OUT`` when a harness frame lies past its
    innermost function: a handler running a scenario's code looks, by the
    implementation's functions alone, just like a handler stuck in them.
    Threads in ``ignore`` (idents of threads older than the case: stuck in an
    earlier case of a worker that carried on) are left out.  "" when no thread
    is inside the implementation.  ``frames``: each thread's innermost frame to
    read (default: where each thread is now).
    """
    if not impl_paths:
        return ""
    prefixes = tuple(impl_paths)
    chains = set()
    for ident, frame in (sys._current_frames() if frames is None else frames).items():
        if ident in ignore:
            continue
        names, calls_out = _chain(frame, prefixes)
        if names:
            chains.add(">".join(names) + (CALLS_OUT if calls_out else ""))
    return " | ".join(sorted(chains))


def _chain(frame: FrameType, prefixes: tuple[str, ...]) -> tuple[list[str], bool]:
    """The implementation's functions on ``frame``'s stack, outermost first (ending in
    ``SELECT_FOR_EVER`` for a serving loop blocked for ever), and whether a harness
    frame lies past the innermost of them (``CALLS_OUT``)."""
    names: list[str] = []
    calls_out = False
    for code in _codes(frame):
        path = _real_path(code.co_filename)
        if path.startswith(prefixes):
            names.append(code.co_name)
            calls_out = False
        elif names and path.startswith(HARNESS_DIR):
            calls_out = True
    if names and names[-1] in BLOCKING_LOOPS and _selects_for_ever(frame):
        names.append(SELECT_FOR_EVER)
    return names, calls_out


#: How a stall by ``deadlocked`` is described in a hang's reason.
WAITS_FOR_EVER = "in select() or a threading wait, with no timeout"


def deadlocked(impl_paths: Sequence[str], ignore: Collection[int] = ()) -> str:
    """The stack signature (``stack_signature``) when every thread inside the
    implementation (leaving out ``ignore``) waits for ever, none calling back into the
    harness: a serving loop blocked in ``select()`` with no timeout
    (``SELECT_FOR_EVER``), or a ``threading`` wait with no timeout (an event, a
    condition, a lock, a queue, a join).  No thread of the implementation can then
    wake another, and none wakes on its own: it stays so.  "" otherwise, and when no
    thread is inside it."""
    prefixes = tuple(impl_paths)
    if not prefixes:
        return ""
    found = set()
    for ident, frame in sys._current_frames().items():
        if ident in ignore:
            continue
        names, calls_out = _chain(frame, prefixes)
        if not names:
            continue
        if calls_out or not (names[-1] == SELECT_FOR_EVER or _waits_for_ever(frame)):
            return ""
        found.add(">".join(names))
    return " | ".join(sorted(found))


#: The pseudo-function ending the chain of a serving loop blocked in a selector's
#: ``select()`` with no timeout: it can never poll again (run ``service_actions()``,
#: see the flag ``shutdown()`` set), only wake for a request.  Shown as a function of
#: the implementation's, so the loop counts as stuck rather than idle, and the report
#: says where it waits.
SELECT_FOR_EVER = "select(no timeout)"

#: Serving loops that must poll while idle (``handle_request()`` without a timeout
#: may rightly wait for a request for ever).
BLOCKING_LOOPS = frozenset(("serve_forever",))

_SELECTORS = os.path.realpath(selectors.__file__)


def _selects_for_ever(frame: FrameType) -> bool:
    """Whether ``frame`` (a thread's innermost) is a ``selectors`` ``select()`` with no
    timeout (``None``, or the negative one ``EpollSelector`` turns it into) on a
    selector watching one file at most: the listening socket.  A loop that also
    watches a pipe of its own (the self-pipe design) is woken by ``shutdown()``
    through it, and is idle, not blocked."""
    code = frame.f_code
    if code.co_name != "select" or _real_path(code.co_filename) != _SELECTORS:
        return False
    local = frame.f_locals
    timeout = local.get("timeout", 0)
    if not (timeout is None or (isinstance(timeout, (int, float)) and timeout < 0)):
        return False
    try:
        watched = len(local["self"].get_map())
    except (KeyError, AttributeError, TypeError, RuntimeError):
        return False  # not a selector as ``selectors`` makes them: no claim
    return watched <= 1


_THREADING = os.path.realpath(threading.__file__)


def _waits_for_ever(frame: FrameType) -> bool:
    """Whether ``frame`` (a thread's innermost) is a ``threading`` wait with no timeout:
    ``Condition.wait`` (under ``Event.wait``, ``Semaphore.acquire``, ``Queue.get``) or
    a thread's join (``_wait_for_tstate_lock`` up to 3.12, ``join`` from 3.13)."""
    code = frame.f_code
    if _real_path(code.co_filename) != _THREADING:
        return False
    timeout = frame.f_locals.get("timeout", 0)
    if code.co_name in ("wait", "join"):
        return timeout is None
    if code.co_name == "_wait_for_tstate_lock":
        return bool(frame.f_locals.get("block", False)) and timeout == -1
    return False


def _codes(frame: FrameType | None) -> list[CodeType]:
    """The code objects of ``frame``'s stack, outermost first (no source lines read,
    unlike ``traceback.extract_stack``: only files and function names matter here)."""
    codes = []
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    codes.reverse()
    return codes


#: Implementation functions that wait for requests: idle there is not stuck.
IDLE_LOOPS = frozenset(("serve_forever", "handle_request"))

#: Implementation functions that wait for a serving loop: while a loop is idle in
#: ``select()``, ``shutdown()`` waits for its next poll (up to ``poll_interval``,
#: 0.5 s by default), which is no more stuck than the loop itself.
WAITS_FOR_LOOP = frozenset(("shutdown",))

#: Implementation functions that wait for the server's other threads or processes:
#: ``shutdown()`` for the serving loop, ``server_close()`` for handler threads (its
#: ``_threads.join()`` from 3.12, its own loop of joins before) and
#: ``collect_children()`` for handler processes.  Beside a thread stuck in its own
#: right (a handler, a loop inside one), such a wait is stuck because of it.
WAITERS = WAITS_FOR_LOOP | frozenset(("join", "collect_children", "server_close"))


def stuck_chains(signature: str) -> frozenset[str]:
    """The chains of ``signature`` stuck in the implementation: not a loop idle in
    ``select()``, nor a call waiting for such a loop (``WAITS_FOR_LOOP``), nor a
    call waiting for another chain stuck in its own right (``WAITERS``)."""
    every = chains(signature)
    stuck = {c for c in every if not innermost(c) <= IDLE_LOOPS | IDLE_POLLS}
    if len(stuck) < len(every):  # a loop is idle: what waits for it is not stuck
        stuck = {c for c in stuck if not innermost(c) <= WAITS_FOR_LOOP}
    own = {c for c in stuck if not innermost(c) <= WAITERS}
    return frozenset(own or stuck)


class _Done(Exception):
    """The waited-for thing finished during a stall watch (internal)."""


def what_stalled(phase: str) -> str:
    """How a stalled phase is described in the hang's reason."""
    return "the case stalled" if phase == CASE_PHASE else f"{phase} stalled"


def innermost(signature: str) -> frozenset[str]:
    """The innermost implementation function of each chain of ``signature``."""
    return frozenset(
        chain.rsplit(">", 1)[-1].rstrip(CALLS_OUT) for chain in signature.split(" | ") if chain
    )


def _last_call(chain: str) -> str:
    """The innermost function of ``chain`` and its caller (``caller>callee``)."""
    return ">".join(chain.split(">")[-2:])


def chains(signature: str) -> frozenset[str]:
    """The chains of ``signature`` (one per thread inside the implementation)."""
    return frozenset(chain for chain in signature.split(" | ") if chain)


#: How often a phase with a known hang looks whether the implementation waits for ever
#: (``deadlocked``; seconds, before scale): a look reads each thread's innermost frames.
BLOCKED_STEP = 0.005


#: At most this many times its idle-host length does a loaded host stretch a full
#: phase deadline (a first occurrence): 2 s for ``shutdown()`` becomes at most 4 s.
LOAD_STRETCH = 2.0


class PhaseClock:
    """The phase deadlines of one case: full, shortened for known hangs, or off."""

    def __init__(
        self,
        scale: float = 1.0,
        enabled: bool = True,
        known: Sequence[KnownHang] = (),
        impl_paths: Sequence[str] = (),
        children: Callable[[float], str | None] = lambda scale: None,
        stretch: float | None = None,
    ) -> None:
        self.scale = scale
        self.enabled = enabled
        self.impl_paths = tuple(impl_paths)
        # The stack signature of the process's live children (``childstacks``):
        # "" with none, None when one cannot be judged.
        self.children = children
        self.known = {(k.phase, k.signature): k for k in known if k.cases >= REPEAT_AFTER}
        #: Threads older than this clock (the case): not part of its signatures.
        self.older = frozenset(threading.enumerate())
        #: Longest time each phase took in this case (evidence; sizes the deadlines).
        self.took: dict[str, float] = {}
        self.limits = enabled  # False: the caller's own limit, but known hangs still count
        #: Full deadlines are sized on an idle host: a loaded one (CI running suites side
        #: by side) stretches them, up to LOAD_STRETCH, so slow but correct code is not
        #: judged hung. Shortened deadlines are not stretched: their stacks already show
        #: a hang this implementation had. ``stretch``: the one of an earlier clock
        #: of the same case (the load is read once per case).
        if stretch is None:
            stretch = load_allowance(LOAD_STRETCH) if enabled else 1.0
        self.stretch = stretch

    def without_limits(self) -> PhaseClock:
        """This clock for a call whose caller sets its own limit (a scenario's own
        ``shutdown()``/``server_close()``): no phase deadline, but hangs still get a
        phase and signature, and a known hang still its shortened deadline."""
        clock = PhaseClock(
            self.scale, self.enabled, (), self.impl_paths, self.children, self.stretch
        )
        clock.known, clock.took, clock.limits = self.known, self.took, False
        clock.older = self.older
        return clock

    def limit(self, phase: str, fallback: float) -> float:
        """The full deadline of ``phase`` (scaled), never beyond ``fallback``;
        ``fallback`` itself when phase deadlines are off or the phase has none."""
        if not self.limits or phase not in PHASE_DEADLINES:
            return fallback
        return min(fallback, PHASE_DEADLINES[phase] * self.scale * self.stretch)

    def _older_idents(self) -> list[int]:
        # By thread object, not ident: a dead thread's ident may be reused.
        return [t.ident for t in threading.enumerate() if t in self.older and t.ident]

    def stacks(self) -> str:
        """``dump_stacks`` of this case's threads (not those older than the case)."""
        return dump_stacks(self._older_idents())

    def signature(self) -> str:
        """The current stack signature (see ``stack_signature``), with the chains of
        the process's children when each of them could be judged (a forking server's
        handlers run there)."""
        return self.look()[0]

    def look(self) -> tuple[str, bool]:
        """``signature()``, and whether it covers every live child of the process:
        each answered from inside the implementation with no handler at work (or
        there is none), so no handler is at work where no stack shows it."""
        own = stack_signature(self.impl_paths, self._older_idents())
        theirs = self.children(self.scale) if self.enabled else None
        if not theirs:
            return own, theirs is not None
        return " | ".join(sorted(chains(own) | chains(theirs))), True

    def stuck_signature(self, signature: str | None = None) -> str:
        """``signature`` (default: ``signature()`` now) without the chains of serving
        loops idle in ``select()``: where the implementation's threads are stuck while
        a client waits.  A loop blocked there for ever (``SELECT_FOR_EVER``) is left
        out too: a waiting client's request was taken already, so the loop does not
        hold its reply or EOF."""
        chains = (self.signature() if signature is None else signature).split(" | ")
        idle = IDLE_LOOPS | IDLE_POLLS | {SELECT_FOR_EVER}
        kept = [c for c in chains if c and not innermost(c) <= idle]
        return " | ".join(kept)

    def death_grace(self, how: str, full: float) -> tuple[float, str]:
        """How long a scenario may go on after its serve thread died ``how``
        (``after_serve_death``, at most ``full``), and why it was shortened, if it was.

        Shortened only when earlier cases of this implementation saw the same death.
        """
        limit = self.limit(DEATH_PHASE, full)
        match = self.known.get((DEATH_PHASE, how)) if self.enabled and how else None
        if match is None:
            return limit, ""
        short = min(limit, short_deadline(DEATH_PHASE) * self.scale)
        note = (
            f"deadline shortened from {limit:g}s to {short:g}s: the serve thread of "
            f"{match.cases} earlier cases of this implementation died the same way ({how})"
        )
        return short, note

    def _stall_match(self, signature: str) -> tuple[KnownHang | None, str]:
        """The known hang (any phase) whose stuck functions include every function the
        implementation's threads are stuck in now, leaving out idle serving loops
        (a loop waiting in ``select()`` is not stuck, and looks the same when it is)
        and what waits for them (``stuck_chains``)."""
        stuck = innermost(" | ".join(stuck_chains(signature)))
        if not stuck:
            return None, ""
        for known in self._hangs():
            if stuck <= innermost(known.signature):
                return known, f"stuck in the same functions ({', '.join(sorted(stuck))})"
        return None, ""

    def _hangs(self) -> list[KnownHang]:
        """The known hangs a whole case may match: not waits (a client's, a scenario's
        for server events), which end as the wait's own timeout and leave the verdict
        to the scenario (``clientwait``)."""
        return [k for k in self.known.values() if k.phase not in WAIT_PHASES]

    def _may_shorten(self, phase: str) -> bool:
        """Whether a known hang may shorten ``phase`` (any known hang, for the whole case)."""
        if phase == CASE_PHASE:
            return bool(self._hangs())
        return any(p == phase for p, _ in self.known)

    def _match(self, phase: str, signature: str) -> tuple[KnownHang | None, str]:
        """The known hang the stacks show now, and how they match it.

        A phase matches its own known hangs by the very same signature.  A whole
        case (a scenario stuck in a call of its own, after its shortened 5 s) also
        matches a known hang of any phase whose threads are stuck in the same
        innermost functions (``server_close`` called from ``__exit__`` or
        ``__init__`` rather than from teardown).
        """
        match = self.known.get((phase, signature))
        if match is not None:
            return match, "with the same stacks"
        if phase == CASE_PHASE and signature:
            stuck = innermost(signature)
            for known in self._hangs():
                if innermost(known.signature) == stuck:
                    return known, f"stuck in the same functions ({', '.join(sorted(stuck))})"
        return None, ""

    def _quick_match(self, signature: str) -> tuple[KnownHang | None, str]:
        """The known hang (any phase) with a chain ending in the same call (the last two
        functions: the innermost and its caller) as each thread stuck now (idle serving
        loops and what waits for them aside, ``stuck_chains``), none of them a handler at
        work.  The outer functions may differ:
        ``serve_forever`` or ``handle_request`` above a handler stuck in ``__init__``."""
        stuck = stuck_chains(signature)
        if not stuck or any(c.endswith(CALLS_OUT) for c in stuck):
            return None, ""
        calls = {_last_call(c) for c in stuck}
        for known in self._hangs():
            if calls <= {_last_call(c) for c in chains(known.signature)}:
                return known, f"stuck in the same calls ({', '.join(sorted(calls))})"
        return None, ""

    def _frozen(self) -> str:
        """The signature now if every thread of the implementation waits for ever
        (``deadlocked``) and no child process of it lives (one may be at work where no
        stack here shows it); "" otherwise.  Nothing in the implementation can then wake
        another of its threads, and the harness waits for them: they stay so."""
        own = deadlocked(self.impl_paths, self._older_idents())
        if not own:
            return ""
        theirs = self.children(self.scale) if self.enabled else None
        return own if theirs == "" else ""

    def _stalled(
        self, done: Callable[[float], bool], phase: str, short: float, progress: Callable[[], int]
    ) -> Hang | None:
        """Wait up to ``short`` in steps; the ``Hang`` to raise once the stacks match
        a known hang and nothing happened (``progress`` unchanged) for ``STALL_AFTER``
        (``QUICK_STALL_AFTER`` when every stuck thread is stuck in the same call as a
        thread of that hang, ``_quick_match``);
        None when ``done`` or ``short`` passed without such a stall."""
        step, after = QUICK_STALL_STEP * self.scale, STALL_AFTER * self.scale
        quick = QUICK_STALL_AFTER * self.scale
        # Progress is read more often than the stacks are looked at: the silence is
        # then measured from within a short poll of the last event, and the first
        # look comes within a poll of the silence being long enough.
        poll = min(step, PROGRESS_POLL * self.scale)
        started = time.monotonic()
        seen, since = progress(), started
        while True:
            now = time.monotonic()
            left = short - (now - started)
            if done(max(0.0, min(poll if now - since < quick else step, left))):
                raise _Done
            now = time.monotonic()
            if now - started >= short:
                return None
            count = progress()
            if count != seen:
                seen, since = count, now
                continue
            frozen = "" if now - since >= quick else self._frozen()
            if now - since < quick and not frozen:
                continue
            signature = frozen or self.signature()
            if now - since < after:
                match, how = self._quick_match(signature)
            else:
                match, how = self._stall_match(signature)
            if match is not None:
                why = f"no lifecycle event for {now - since:.1f}s"
                if frozen:
                    why = f"every thread of the implementation waits for ever ({WAITS_FOR_EVER})"
                note = (
                    f"{why} and {match.cases} earlier cases of this implementation hung in "
                    f"{match.phase} {how}"
                )
                return Hang(
                    f"{what_stalled(phase)} ({note})", self.stacks(), phase, signature, note
                )

    def _blocked(
        self, done: Callable[[float], bool], phase: str, short: float, full: float, what: str
    ) -> Hang | None:
        """Wait up to ``short`` for ``done``, in steps (``_Done`` once done); the ``Hang``
        to raise as soon as a known hang of ``phase`` shows again, with the same stacks,
        while every thread of the implementation waits for ever (``deadlocked``) and no
        child process of it lives: the caller waits for the call, so nothing can wake
        them, and the rest of the short deadline could only end the same way.  None at
        the end of ``short`` (the caller then matches the stacks as before)."""
        step = BLOCKED_STEP * self.scale
        started = time.monotonic()
        while True:
            left = short - (time.monotonic() - started)
            if done(max(0.0, min(step, left))):
                raise _Done
            if left <= step:
                return None
            signature = self._frozen()
            match = self.known.get((phase, signature)) if signature else None
            if match is None:
                continue
            waited = time.monotonic() - started
            note = (
                f"deadline shortened from {full:g}s to {waited:.3f}s: every thread of the "
                f"implementation waits for ever ({WAITS_FOR_EVER}), and {match.cases} earlier "
                f"cases of this implementation hung in {phase} with the same stacks"
            )
            return Hang(
                f"{what} did not return within {waited:.3f}s ({note})",
                self.stacks(),
                phase,
                signature,
                note,
            )

    def wait(
        self,
        done: Callable[[float], bool],
        phase: str,
        full: float,
        what: str,
        reason: str = "",
        progress: Callable[[], int] | None = None,
    ) -> None:
        """Wait with ``done(timeout)`` for up to ``full`` seconds, else raise ``Hang``
        (with ``reason``, default "``what`` did not return within ``full``s").

        With a known hang of ``phase``, first wait only the shortened deadline;
        if the stacks then match a known signature, the case hangs at once (the
        reason says so), otherwise the rest of ``full`` is waited as usual.
        """
        started = time.monotonic()
        try:
            if self.enabled and self._may_shorten(phase):
                short = min(full, short_deadline(phase) * self.scale)
                try:
                    if progress is not None:
                        stalled = self._stalled(done, phase, short, progress)
                    else:
                        stalled = self._blocked(done, phase, short, full, what)
                except _Done:
                    return
                if stalled is not None:
                    raise stalled
                signature = self.signature()
                match, how = self._match(phase, signature)
                if match is not None and signature:
                    note = (
                        f"deadline shortened from {full:g}s to {short:g}s: {match.cases} earlier "
                        f"cases of this implementation hung in {match.phase} {how}"
                    )
                    raise Hang(
                        f"{what} did not return within {short:g}s ({note})",
                        self.stacks(),
                        phase,
                        signature,
                        note,
                    )
                if done(max(0.0, full - (time.monotonic() - started))):
                    return
            elif done(full):
                return
            raise Hang(
                reason or f"{what} did not return within {full:g}s",
                self.stacks(),
                phase,
                self.signature(),
            )
        finally:
            took = time.monotonic() - started
            self.took[phase] = max(took, self.took.get(phase, 0.0))


#: The clock of code run outside a case (no phase deadlines, no known hangs).
NO_PHASES = PhaseClock(enabled=False)


def call_with_deadline(
    fn: Callable[[], T],
    timeout: float,
    what: str,
    clock: PhaseClock = NO_PHASES,
    phase: str = "call",
) -> T:
    """Run ``fn()``; return its result, re-raise its exception, or raise ``Hang``."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def runner() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=runner, name=f"{HARNESS_THREAD_PREFIX}call", daemon=True)
    thread.start()
    clock.wait(done.wait, phase, timeout, what)
    thread.join(timeout)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
