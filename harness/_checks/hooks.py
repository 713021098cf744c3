"""Cause-first findings: one per hook that never ran or did nothing.

``lifecycle.order`` reports each request whose hooks went wrong; a broken hook
shows there as the same ``MISSING`` in every transcript.  These findings name
the hook itself, once, with how many requests it failed, so the report leads
with the cause ("close_request never ran") rather than its symptoms ("N
descriptors left open", clients that time out).  They read facts the
instrumentation recorded, never objects it kept (see ``harness._runtime.instrument``).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from harness._model.lifecycle import by_conn, entries, expected_paths
from harness._model.records import LifecycleEvent

if TYPE_CHECKING:
    from harness._runtime.context import Context

#: The instrumentation's point event for a request collected before ``close_request``.
RELEASED = "request_released"


def hooks_effective(ctx: Context, kind: str | None = None) -> bool:
    """Every hook a request needs ran, and ``close_request`` closed the socket.

    One finding per hook that never ran for some request (``hooks.missing``)
    and one when ``close_request`` returned with the descriptor still open
    (``hooks.noop``).  Requests collected by the garbage collector before any
    ``close_request`` are named in the evidence: their client still got EOF,
    from CPython's reference counting, not from the server.
    """
    kind = kind or ctx.kind
    missing: Counter[str] = Counter()
    requests = 0
    collected: list[int] = []
    open_after_close: list[int] = []
    for conn, events in by_conn(ctx.events()).items():
        if not any(e.name == "get_request" for e in events):
            continue
        requests += 1
        owner = next(
            (e.pid for e in events if e.name == "get_request" and e.phase == "return"),
            ctx.log.owner_pid,
        )
        ran = {(e.name, e.pid == owner) for e in entries(events)}
        for role, path in expected_paths(kind, _accepted(events), _setup_raised(events)).items():
            for hook in set(path):
                if (hook, role == "server") not in ran:
                    missing[hook] += 1
        if any(e.name == RELEASED for e in events):
            collected.append(conn)
        if any(_left_open(e) for e in events):
            open_after_close.append(conn)
    ok = True
    for hook, count in sorted(missing.items()):
        ok = False
        ctx.fail(
            "hooks.missing",
            f"{hook}() never ran for {count} of {requests} request(s)",
            expected=f"{hook}() once per request",
            observed=f"missing for {count}",
            collected_by_gc=collected[:50] if hook == "close_request" else [],
        )
    if open_after_close:
        ok = False
        ctx.fail(
            "hooks.noop",
            f"close_request() returned with the socket still open for {len(open_after_close)} "
            "request(s): it does not close the request",
            expected="the request's descriptor closed when close_request() returns",
            observed=f"still open for conn#{open_after_close[0]}",
            conns=open_after_close[:50],
        )
    return ok


def _left_open(event: LifecycleEvent) -> bool:
    return (
        event.name == "close_request"
        and event.phase == "return"
        and bool(event.detail.get("fd_open"))
    )


def _accepted(events: list[LifecycleEvent]) -> bool:
    verdicts = [
        e.detail.get("result") for e in events if e.name == "verify_request" and e.phase == "return"
    ]
    return not verdicts or bool(verdicts[0])


def _setup_raised(events: list[LifecycleEvent]) -> bool:
    return any(e.name == "setup" and e.phase == "raise" for e in events)
