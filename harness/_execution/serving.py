"""Checks of how a server served, run by the executor after every verdict but ``error``.

Not scenario post-checks (``checks=(...)``): these hold for every case that
serves, whatever it tests.  The loop stops when ``shutdown()`` returns;
``serve_forever()`` does not raise; ``server_close()`` closes the listening
socket.  Each is said cause-first, before the symptoms other checks see (late
hooks, descriptors left open).  The concurrency design seen (threads,
per-request fork, pre-fork pool) is kept as evidence.
"""

from __future__ import annotations

import socket

from harness._checks.concurrency import observed_design
from harness._model.records import LifecycleEvent
from harness._runtime.context import Context


def serving_checks(ctx: Context) -> None:
    """Every serving check, in turn (each records its own findings)."""
    _loop_stopped(ctx)
    _serve_errors(ctx)
    _listeners_closed(ctx)


def observe_design(ctx: Context) -> None:
    """Name the concurrency design the log shows (evidence, pass or fail)."""
    design = observed_design(ctx)
    if design:
        ctx.note("design", design)


#: Hooks only a running server loop calls.
_LOOP_HOOKS = frozenset(("get_request", "service_actions"))


def _loop_stopped(ctx: Context) -> None:
    """After ``shutdown()`` returned, the loop ended: no loop hook ran, no thread serves on.

    A hook of the server loop (``service_actions``, ``get_request``) in a
    serving thread — or in a forked copy of it — after ``shutdown()`` returned
    and before the loop was started again means the loop kept running.
    """
    events = ctx.log.events()
    serving = {e.thread_id for e in events if e.name == "serve_forever" and e.phase == "call"}
    for handle in ctx.servers:
        if handle.survived_shutdown:
            ctx.fail(
                "shutdown.loop_continues",
                "serve_forever() was still running after shutdown() returned",
                expected="the serving thread ends when shutdown() returns",
                observed="the serve_forever() thread still alive",
            )
    after: dict[int, float] = {}  # server id -> when its last shutdown() returned
    late: list[LifecycleEvent] = []
    for event in events:
        if event.name == "shutdown" and event.phase == "return":
            after[event.server] = event.t
        elif event.name in ("serve_forever", "handle_request") and event.phase == "call":
            after.pop(event.server, None)  # served again: a new loop
        elif (
            event.name in _LOOP_HOOKS
            and event.server in after
            and event.thread_id in serving
            and event.phase in ("call", "point")
        ):
            late.append(event)
    if late:
        pids = sorted({e.pid for e in late})
        ctx.fail(
            "shutdown.loop_continues",
            f"the server loop ran {len(late)} more hook call(s) ({late[0].name} first) after "
            "shutdown() had returned",
            expected="no service_actions()/get_request() once shutdown() returns",
            observed=f"{len(late)} call(s) in pid(s) {', '.join(map(str, pids))}",
        )


def _listeners_closed(ctx: Context) -> None:
    """``server_close()`` returned with the listening socket still open: a no-op close.

    Said cause-first, before the descriptor count that shows the same leak.
    """
    closed = {e.server for e in ctx.log.events("server_close") if e.phase == "return"}
    for handle in ctx.servers:
        sid = getattr(handle.server, "_sockspec_server_id", None)
        sock = getattr(handle.server, "socket", None)
        if sid in closed and isinstance(sock, socket.socket) and sock.fileno() != -1:
            ctx.fail(
                "hooks.noop",
                "server_close() returned with the listening socket still open: it does not "
                "close the server's socket",
                expected="the server's socket closed when server_close() returns",
                observed=f"fd {sock.fileno()} still open",
            )
            return


def _serve_errors(ctx: Context) -> None:
    """``serve_forever()`` itself raised (EMFILE included): say so, cause first."""
    for event in ctx.log.events("serve_forever"):
        if event.phase == "raise" and event.exc_type not in _EXPECTED_EXITS:
            ctx.fail(
                "serve_forever.raised",
                f"serve_forever() raised {event.exc_type}: {_last_line(event.exc)}",
                expected="serve_forever() runs until shutdown()",
                observed=_last_line(event.exc),
                traceback=(event.exc or "")[-2000:],
            )


#: How a loop may end by design (a scenario's handler exits the server on purpose).
_EXPECTED_EXITS = ("SystemExit", "KeyboardInterrupt")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
