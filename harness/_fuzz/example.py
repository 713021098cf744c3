"""One Hypothesis example of a fuzz case: a clean world, its steps and its checks.

The scenario's context accumulates servers, clients, events and findings, but
each Hypothesis example must start from nothing and judge only itself.  An
``Example`` therefore owns a *sub-context* (same implementation, case, seed
and deadline; its own event log, temporary directory, servers, clients and
findings) plus a resource snapshot taken before it.  Steps run through
``Example.step``, which writes the transcript line, turns what went wrong
into findings and fails the example (``FuzzFailure``) as soon as any check
does, so Hypothesis can shrink it.  ``Example.finish`` tears everything down
and runs the end-of-example checks: complete lifecycles, ``handle_error``
once per raised exception, handler placement, and no leaked descriptors,
threads or children.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness import checks
from harness._checks.concurrency import observed_design
from harness._model.errors import Hang
from harness._model.lifecycle import entries, expected_paths, transcript
from harness._model.records import Finding, LifecycleEvent
from harness._runtime.clients import ResponseTooLarge
from harness._runtime.context import Context, bookkeeping, nest
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX
from harness._runtime.resources import leak_findings, reap_and_kill, settle, take_snapshot
from harness._runtime.serverhandle import sockets_held

if TYPE_CHECKING:
    from harness._model.implementation import Implementation

#: How long an example's leftovers may take to wind down before they are leaks.
EXAMPLE_LEAK_GRACE = 2.0


class FuzzFailure(AssertionError):
    """An example broke a check: its findings and the transcript that led there."""

    def __init__(self, findings: list[Finding], lines: list[str]) -> None:
        first = findings[0]
        super().__init__(f"{first.check}: {first.message}")
        self.findings = list(findings)
        self.lines = list(lines)


class Abandon(BaseException):
    """Stop fuzzing at once, without shrinking: a hang or a broken scenario.

    A ``BaseException``, so that Hypothesis lets it through instead of
    shrinking (each shrink attempt of a hang would leave a stuck thread).
    """

    def __init__(self, error: Exception, lines: list[str]) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        self.lines = list(lines)


class Example:
    """The world of one example: a fresh sub-context, a transcript and a snapshot."""

    def __init__(self, parent: Context, index: int) -> None:
        self.index = index
        self.lines: list[str] = []
        self.steps = 0
        self.inputs = 0  # generated inputs sent (payload fuzzing counts these)
        self.failed = False
        self.failed_time: float | None = None  # monotonic time of the failure
        self.failure: FuzzFailure | None = None
        self._baseline = take_snapshot()
        self._tmpdir = os.path.join(parent.tmpdir, f"x{index}")
        os.mkdir(self._tmpdir)
        # One capture per case is enough: the example context has none.
        options = replace(parent.options, capture=False)
        ctx = Context(parent.impl, parent.case, parent.seed, self._tmpdir, options)
        ctx.deadline = parent.deadline
        self.ctx = ctx
        self._unnest = nest(parent, ctx)  # its dead server is the case's; it ends with the case

    # -- steps ------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[list[str]]:
        """Run one step: the body may append outcome notes to the yielded list.

        Implementation errors and client I/O errors become findings; a hang or
        a scenario bug abandons the run; any finding fails the example.
        """
        self.steps += 1
        self.lines.append(f"{len(self.lines) + 1:>3}. {label}")
        notes: list[str] = []
        try:
            yield notes
        except (FuzzFailure, Abandon):
            self._failing()
            raise
        except Hang as exc:
            self._failing()
            self.lines[-1] += f"  → HANG: {exc.reason}"
            raise Abandon(exc, self.lines) from exc
        except Exception as exc:
            self._step_error(exc)
        if notes:
            self.lines[-1] += "  → " + "; ".join(notes)
        self.check()

    def _step_error(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if _raised_in(self.ctx.impl, exc):
            self.ctx.fail("implementation.raised", f"the implementation raised {text}")
        elif isinstance(exc, (OSError, EOFError, ResponseTooLarge)):
            self.ctx.fail(
                "clients.io", f"a client saw {text}", expected="the step completes", observed=text
            )
        else:
            self._failing()
            self.lines[-1] += f"  → scenario error {text}"
            raise Abandon(exc, self.lines) from exc

    def check(self) -> None:
        """Fail the example now if any check has recorded a finding."""
        if self.ctx.findings:
            self._failing()
            first = self.ctx.findings[0]
            self.lines.append(f"FAILED {first.check}: {first.message}")
            self.failure = FuzzFailure(self.ctx.findings, self.lines)
            raise self.failure

    def _failing(self) -> None:
        if not self.failed:
            self.failed, self.failed_time = True, time.monotonic()

    def invariants(self) -> None:
        """Checks that hold after every step: hook orders so far, no serving loop died."""
        if self.failed:
            return
        lifecycle_prefix(self.ctx)
        for handle in self.ctx.servers:
            error = handle.serve_error
            self.ctx.expect(
                error is None,
                "serve_forever.raised",
                "serve_forever() ended with an exception",
                expected="serve_forever() runs until shutdown()",
                observed=repr(error),
            )
        self.check()

    # -- the end ----------------------------------------------------------------
    def finish(self) -> None:
        """Tear down; unless the example already failed, run the end-of-example checks."""
        quiet, ctx = self.failed, self.ctx
        try:
            bookkeeping(ctx).release()
            hang = self._close_servers()
            if hang is not None and not quiet:
                self._failing()
                self.lines.append(f"  teardown → HANG: {hang.reason}")
                raise Abandon(hang, self.lines) from hang
            if not quiet:
                self._end_checks()
        finally:
            ctx.log.close()
            leaks = settle(
                self._baseline,
                EXAMPLE_LEAK_GRACE,
                pinned=lambda: sockets_held(ctx.servers),
            )
            if leaks.children:
                reap_and_kill(leaks.children)
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._unnest()
        if not quiet and "resources" in ctx.case.spec.checks:
            ctx.findings.extend(leak_findings(leaks))
        if not quiet and ctx.findings:
            self.lines.append("  teardown: close clients and servers, end-of-example checks")
            self.check()

    def _close_servers(self) -> Hang | None:
        """Close every server of the example (each with a deadline); the first hang, if any."""
        hang: Hang | None = None
        for handle in reversed(self.ctx.servers):
            try:
                handle.close(timeout=self.ctx.timeout(5.0))
            except Hang as exc:
                hang = hang or exc
            except Exception as exc:
                self.ctx.fail("teardown.server_close", f"closing the server raised {exc!r}")
        return hang

    def _end_checks(self) -> None:
        names = self.ctx.case.spec.checks
        if "lifecycle" in names:
            checks.lifecycle(self.ctx)
            checks.errors_handled(self.ctx)
        if "concurrency" in names:
            placement(self.ctx)


# --- checks that suit examples --------------------------------------------------


def _by_conn(events: list[LifecycleEvent]) -> dict[int, list[LifecycleEvent]]:
    grouped: dict[int, list[LifecycleEvent]] = {}
    for event in events:
        if event.conn is not None:
            grouped.setdefault(event.conn, []).append(event)
    return grouped


def lifecycle_prefix(ctx: Context) -> bool:
    """Mid-example: every request's hooks so far are a prefix of its expected path."""
    owner, ok = ctx.log.owner_pid, True
    for conn, events in _by_conn(ctx.events()).items():
        if not any(e.name == "get_request" for e in events):
            continue
        setup_raised = any(e.name == "setup" and e.phase == "raise" for e in events)
        verdicts = [e.detail.get("result") for e in events if e.name == "verify_request"]
        accepted = not [v for v in verdicts if v is not None] or bool(
            next(v for v in verdicts if v is not None)
        )
        steps = entries(events)
        for role, want in expected_paths(ctx.kind, accepted, setup_raised).items():
            got = tuple(e.name for e in steps if (e.pid == owner) == (role == "server"))
            if got != want[: len(got)]:
                ok = False
                ctx.fail(
                    "lifecycle.order",
                    f"conn#{conn}: {role} hooks out of order or repeated",
                    expected=" → ".join(want),
                    observed=" → ".join(got),
                    conn=conn,
                    transcript=transcript(conn, events, want),
                )
    return ok


def placement(ctx: Context) -> bool:
    """Handlers run where the server kind says (judged by thread name and pid, which,
    unlike thread ids, are never reused within an example)."""
    owner = ctx.log.owner_pid
    handles = [e for e in ctx.events("handle") if e.phase == "call"]

    def harness(e: LifecycleEvent) -> bool:
        return e.pid == owner and e.thread_name.startswith(HARNESS_THREAD_PREFIX)

    if ctx.kind == "sync":
        strays, want = [h for h in handles if not harness(h)], "the serving thread"
    elif ctx.kind == "threading" and observed_design(ctx).startswith("pool"):
        # A pre-fork pool's workers handle what they accept (as checks.concurrency_placement).
        strays, want = [h for h in handles if harness(h)], "a worker of the pool"
    elif ctx.kind == "threading":
        strays = [h for h in handles if harness(h) or h.pid != owner]
        want = "a thread of its own"
    else:
        strays, want = [h for h in handles if h.pid == owner], "a child process"
    where = sorted({f"{h.thread_name} (pid {h.pid})" for h in strays})
    return ctx.expect(
        not strays,
        "concurrency.placement",
        f"{len(strays)} handler(s) ran in the wrong place for a {ctx.kind} server",
        expected=f"each handle() in {want}",
        observed=", ".join(where[:5]),
    )


def _raised_in(impl: Implementation, exc: BaseException) -> bool:
    """True when ``exc`` was raised inside the implementation's own source."""
    module = impl.module
    paths = list(getattr(module, "__path__", None) or [])
    file = getattr(module, "__file__", None)
    prefixes = tuple(os.path.realpath(p) + os.sep for p in paths) or (
        (os.path.realpath(file),) if file else ()
    )
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(prefixes) and any(
        os.path.realpath(f.filename).startswith(prefixes) for f in frames[-3:]
    )


def wait_until(
    ctx: Context, predicate: Callable[[list[LifecycleEvent]], bool], timeout: float
) -> bool:
    """Poll the event log until ``predicate(events)`` holds; False after ``timeout`` seconds.

    A deadline-bounded wait on what the server has logged, for steps that have
    no reply to wait for (a handler ending, a connection accepted).
    """
    deadline = time.monotonic() + ctx.timeout(timeout)
    while True:
        if predicate(ctx.events()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)


def jsonable(value: Any) -> Any:
    """Tuples as lists and bytes as text: what results.json can hold."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
