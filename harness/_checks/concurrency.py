"""Measurements for the concurrency checks: spans and ends of handlers, read from the event log.

Timestamps are ``time.monotonic()``, comparable across forked children.  None of
these raises for a violation; scenarios and checks judge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness._model.lifecycle import by_conn

if TYPE_CHECKING:
    from harness._model.records import LifecycleEvent
    from harness._runtime.context import Context

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


def observed_design(ctx: Context) -> str:
    """The concurrency design the event log shows, named for evidence.

    ``pool``: requests accepted (``get_request`` returned) in processes other
    than the serving one, which only a pre-fork pool does; ``per-request fork``:
    handlers in child processes that did not accept; ``threads``: handlers in
    threads other than the serving one; ``serving thread``: everything in the
    thread that serves; ``""`` when no request was handled.
    """
    owner = ctx.log.owner_pid
    events = ctx.events()
    accepted = {e.pid for e in events if e.name == "get_request" and e.phase == "return"}
    handles = [e for e in events if e.name == "handle" and e.phase == "call"]
    if not handles:
        return ""
    if accepted - {owner}:
        return f"pool ({len(accepted - {owner})} worker process(es) calling get_request)"
    if any(e.pid != owner for e in handles):
        return "per-request fork"
    serving = {
        (e.pid, e.thread_id)
        for e in events
        if e.name in ("serve_forever", "handle_request") and e.phase == "call"
    }
    if all((e.pid, e.thread_id) in serving for e in handles):
        return "serving thread"
    return "threads"


#: Hooks whose raise (or a ``handle_error`` for the request) means the request
#: took the error path: no handler is owed, the error checks judge it.
_ERROR_PATH = ("verify_request", "process_request", "finish_request")


@dataclass(frozen=True)
class RequestFates:
    """What became of the requests the server accepted (each ``get_request`` that returned).

    ``lost``: accepted and verified, no error on the way, yet no handler was
    ever made for it, in any process or thread (conn -> pid that accepted it).
    ``repeated``: more than one handler made for one request (conn -> count).
    ``handled``: how many accepted requests got exactly one handler.
    """

    lost: dict[int, int]
    repeated: dict[int, int]
    handled: int


def request_fates(ctx: Context) -> RequestFates:
    """Each accepted request's fate, from the per-connection records of every process.

    Connection ids are unique across processes (a forked child counts from its
    own base), so a request is followed wherever it went: the pool worker that
    accepted it, the thread or child that handled it.  A request whose
    ``process_request`` is still running (a hang) is not counted as lost.
    """
    lost: dict[int, int] = {}
    repeated: dict[int, int] = {}
    handled = 0
    for conn, events in by_conn(ctx.events()).items():
        accepted = next(
            (e for e in events if e.name == "get_request" and e.phase == "return"), None
        )
        if accepted is None:
            continue
        handlers = sum(1 for e in events if e.name == "handler_init")
        if handlers == 1:
            handled += 1
        elif handlers > 1:
            repeated[conn] = handlers
        elif _owes_a_handler(events):
            lost[conn] = accepted.pid
    return RequestFates(lost, repeated, handled)


def _owes_a_handler(events: list[LifecycleEvent]) -> bool:
    """True when nothing excuses a request from being handled: it was not
    rejected, nothing on its path raised, and ``process_request`` returned."""
    verdicts = [
        e.detail.get("result") for e in events if e.name == "verify_request" and e.phase == "return"
    ]
    if verdicts and not verdicts[0]:
        return False  # rejected by verify_request()
    if any(e.name == "handle_error" for e in events):
        return False
    if any(e.name in _ERROR_PATH and e.phase == "raise" for e in events):
        return False
    calls = sum(1 for e in events if e.name == "process_request" and e.phase == "call")
    ends = sum(1 for e in events if e.name == "process_request" and e.phase in ("return", "raise"))
    return calls == 0 or ends >= calls
