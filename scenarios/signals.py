"""A signal arrives while the server loop waits in ``select()``, in the main thread.

Real servers run their loop in a process's main thread, where Python runs signal
handlers (a timer, SIGCHLD, SIGHUP for a reload...).  A handler that returns
makes ``select()`` retry with what is left of its timeout (PEP 475); one that
raises ``InterruptedError`` makes the selector return an empty list early.  The
cases run the loop in the main thread of a forked child
(``harness.support.in_main_thread``) with ``signal.setitimer`` armed around it;
the handler raises only when it interrupts the loop's wait, as a handler meant
to wake the loop would, and returns everywhere else.

Invariant: a signal does not change when ``handle_request()`` returns: an early,
empty wake-up makes it wait again until the *original* deadline, then it calls
``handle_timeout()`` exactly once (not at the wake-up, not a whole extra wait
later).  ``serve_forever()`` woken by signals keeps serving every client, does not
raise, and still stops when ``shutdown()`` is called.
"""

from __future__ import annotations

import linecache
import os
import select
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from harness import Context, ServerHandle, Unsupported, checks, echo_script, scenario
from harness.support import Background, ChildCall, in_main_thread, slack

#: What a wait's source line calls.  In a frame of the ``selectors`` module (the wait of a
#: loop that uses a selector) a ``poll(``/``select(`` call; in any other frame only a direct
#: call of the ``select`` module.  A handler run there interrupted the wait, and an
#: exception it raises there is one the wait's ``except InterruptedError`` sees.  The
#: loop's own ``selector.select(...)`` line is not a wait: a signal lands there in the
#: instant after the selector returned, where no correct loop catches an exception.
_SELECTOR_WAITS = ("select(", "poll(")
_DIRECT_WAITS = ("select.select(", ".poll(")


def _in_wait(frame: Any) -> bool:
    """Whether a signal handler called with ``frame`` interrupted a loop's wait."""
    if frame is None:
        return False
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    in_selectors = frame.f_code.co_filename == selectors.__file__
    return any(call in line for call in (_SELECTOR_WAITS if in_selectors else _DIRECT_WAITS))


#: Idle polls serve_forever() makes under signals before it is told to stop.
_IDLE_POLLS = 4

#: Rounds a case may repeat when a round could not be judged (the signal missed the
#: wait) or looked late: being late twice in a row is not the machine's load.
_ROUNDS = 2


def _require_signals() -> None:
    if not hasattr(signal, "setitimer"):
        raise Unsupported("host lacks signal.setitimer: cannot time a signal into select()")
    if socket.socket.__module__.startswith(("gevent", "eventlet")):
        raise Unsupported("green threads: a signal does not interrupt a green select()")


def _signalled(call: Callable[[], Any], raises: bool, first: float, interval: float) -> Any:
    """In the child's main thread: ``call()`` with SIGALRM due after ``first`` seconds
    (then every ``interval``, if not 0); returns how long it took and where each
    signal landed (seconds after the start, and whether it interrupted the wait)."""
    landed: list[tuple[float, bool]] = []
    start = time.monotonic()

    def on_signal(signum: int, frame: Any) -> None:
        waiting = _in_wait(frame)
        landed.append((round(time.monotonic() - start, 4), waiting))
        if raises and waiting:
            raise InterruptedError("a signal handler interrupted select()")

    previous = signal.signal(signal.SIGALRM, on_signal)
    signal.setitimer(signal.ITIMER_REAL, first, interval)
    try:
        call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return {"elapsed": time.monotonic() - start, "landed": landed}


def _child_failed(ctx: Context, call: ChildCall, what: str) -> bool:
    """Record a finding when the child did not return a report; True if it did not."""
    if call.status == "returned":
        return False
    observed = {
        "raised": f"raised {call.value}",
        "timeout": f"still running after {call.elapsed:.1f}s (killed)",
    }.get(call.status, f"died without a report (wait status {call.exit_status})")
    ctx.fail(
        "signals.loop_survives",
        f"{what} in a process's main thread, with a signal during select(): {observed}",
        expected=f"{what} returns normally",
        observed=observed,
    )
    return True


@scenario(
    "signals.handle_request",
    title="A signal during handle_request()'s select() does not move its deadline",
    transports=("tcp",),
    kinds=("sync",),
    params={"handler": ["returns", "raises"], "timeout": [0.8], "signal_at": [0.5]},
    checks=("lifecycle", "resources"),
)
def handle_request_signalled(ctx: Context, handler: str, timeout: float, signal_at: float) -> None:
    """handle_request() with server.timeout and no client, in a process's main thread; a
    signal comes ``signal_at`` seconds in.  Whether its handler returns (select() retried)
    or raises InterruptedError (select() returns empty early), handle_request() returns
    at its original deadline, not at the signal nor a whole wait later, having called
    handle_timeout() exactly once."""
    _require_signals()
    srv = ctx.server(serve=False, timeout=timeout)
    raises = handler == "raises"
    # A correct wait ends at the deadline; a loop that re-waits a fixed second after an
    # early wake-up ends signal_at + 1 s in, a loop that gives up ends at the signal.
    early, late = 0.95 * timeout, timeout + slack(ctx, 0.4)
    for attempt in range(1, _ROUNDS + 1):
        before = len(ctx.events("handle_timeout"))
        call = in_main_thread(
            lambda: _signalled(srv.server.handle_request, raises, signal_at, 0.0),
            ctx.timeout(timeout + 10.0),
        )
        if _child_failed(ctx, call, "handle_request()"):
            return
        elapsed, landed = call.value["elapsed"], call.value["landed"]
        ctx.note(f"round{attempt}", {"elapsed": round(elapsed, 3), "signals": landed})
        if not any(waiting for _t, waiting in landed):
            continue  # the signal missed the wait (a stalled child): judge another round
        timeouts = [e for e in ctx.events("handle_timeout")[before:] if e.phase == "call"]
        if not ctx.expect(
            len(timeouts) == 1,
            "signals.handle_timeout_once",
            f"handle_request() called handle_timeout() {len(timeouts)} time(s) after a signal "
            "woke its select()",
            expected="1 call, at the deadline",
            observed=f"{len(timeouts)} call(s), handle_request() took {elapsed:.3f}s",
        ):
            return
        if not ctx.expect(
            elapsed >= early,
            "signals.deadline_kept",
            f"handle_request() returned {elapsed:.3f}s in, before its {timeout}s deadline, "
            f"after a signal at {landed[0][0]:.3f}s",
            expected=f"returns at the deadline: at least {early:.3f}s",
            observed=f"{elapsed:.3f}s",
        ):
            return
        if elapsed < late:
            return
    if elapsed >= late and any(waiting for _t, waiting in landed):
        ctx.fail(
            "signals.deadline_kept",
            f"handle_request() returned {elapsed:.3f}s in, well after its {timeout}s deadline, "
            f"after a signal at {landed[0][0]:.3f}s ({_ROUNDS} rounds)",
            expected=f"returns at the deadline: under {late:.3f}s",
            observed=f"{elapsed:.3f}s",
        )
    elif not any(waiting for _t, waiting in landed):
        ctx.note("signal_missed", f"no signal landed in select() in {_ROUNDS} rounds")


def _serve_until_told(
    srv: ServerHandle, go: int, limit: float, shutdown_limit: float, raises: bool
) -> Any:
    """In the child: serve_forever() under a signal every 10 ms until the parent writes
    to ``go``; a thread of the child then calls shutdown(), which has ``shutdown_limit``
    (the harness's shutdown phase deadline) to return once it was called."""
    called = threading.Event()

    def stop() -> None:
        poller = select.poll()
        poller.register(go, select.POLLIN)
        poller.poll(int(limit * 1000))
        called.set()
        srv.server.shutdown()

    stopper = threading.Thread(target=stop, name="shutdown caller", daemon=True)
    stopper.start()
    result = _signalled(lambda: srv.server.serve_forever(poll_interval=0.05), raises, 0.01, 0.01)
    called.wait(limit)  # a serve_forever() that returned early did so before the parent's go
    stopper.join(shutdown_limit)
    result["shutdown_returned"] = not stopper.is_alive()
    return result


@scenario(
    "signals.serve_forever",
    title="serve_forever() woken by signals during select() keeps serving and stops on shutdown",
    transports=("tcp",),
    kinds=("sync",),
    params={"handler": ["returns", "raises"], "clients": [3]},
    checks=("lifecycle", "resources"),
)
def serve_forever_signalled(ctx: Context, handler: str, clients: int) -> None:
    """serve_forever() in a process's main thread with SIGALRM every 10 ms: whether the
    handler returns or raises InterruptedError in select(), every client is echoed,
    serve_forever() does not raise, and it returns once shutdown() is called."""
    _require_signals()
    srv = ctx.server(serve=False)
    limit = ctx.timeout(15.0)
    go_read, go_write = os.pipe()
    run = None
    try:
        run = Background(
            lambda: in_main_thread(
                lambda: _serve_until_told(
                    srv, go_read, limit, ctx.clock.limit("shutdown", limit), handler == "raises"
                ),
                limit + 5.0,
            ),
            "serve_forever() in a child",
        )
        ctx.wait_events("serve_forever", 1, timeout=5.0)
        payloads = [ctx.payload(32) for _ in range(clients)]
        results = ctx.swarm([echo_script(p, True) for p in payloads], timeout=5.0)
        # Idle polls after the clients: signals land in select() with nothing to serve.
        ctx.wait_events("service_actions", _IDLE_POLLS, timeout=1.0, phase="point")
    finally:
        os.write(go_write, b"stop")  # the child stops even when the clients failed
        # Once told, the child has shutdown() and the loop's end to report: the harness's
        # phase deadlines for those, not the case's (a loop stuck in select() is a hang).
        told = ctx.clock.limit("shutdown", limit) + ctx.clock.limit("serve_join", limit)
        call: ChildCall | None = (
            None if run is None else run.finish(told, ctx.clock, phase="shutdown")
        )
        os.close(go_read)
        os.close(go_write)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, payloads)
    if call is None or _child_failed(ctx, call, "serve_forever()"):
        return
    landed = call.value["landed"]
    ctx.note("signals", {"total": len(landed), "in_select": sum(w for _t, w in landed)})
    ctx.expect(
        call.value["shutdown_returned"],
        "signals.shutdown_returns",
        "shutdown() did not return while serve_forever() was woken by signals",
        expected="shutdown() returns and serve_forever() ends",
        observed="shutdown() still waiting",
    )
