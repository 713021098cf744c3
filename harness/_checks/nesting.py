"""Checks the ``lifecycle`` post-check does not make.

Hooks *nested* inside the hook that calls them, ``handle_error`` running while
the exception is handled and before the request is shut down, and datagram
clients that must hear nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._model.lifecycle import FAULT_HOOKS, HANDLER_PATH, by_conn, transcript
from harness._model.records import LifecycleEvent
from harness._runtime.clients import DatagramClient

if TYPE_CHECKING:
    from harness._runtime.context import Context


def expect_silence(ctx: Context, client: DatagramClient, check: str, wait: float = 0.05) -> bool:
    """No datagram reaches ``client`` within ``wait`` seconds."""
    try:
        data = client.recv(timeout=ctx.timeout(wait))
    except TimeoutError:
        return True
    ctx.fail(
        check,
        "a datagram client got a reply it must not get",
        expected="no reply",
        observed=f"{len(data)} bytes {data[:32]!r}",
    )
    return False


def _spans(events: list[LifecycleEvent], name: str) -> list[tuple[int, int, int, int]]:
    """(start, end, pid, thread) index spans of each call of ``name`` (end: past the last event
    when it never ended)."""
    spans = []
    for i, call in enumerate(events):
        if call.name != name or call.phase != "call":
            continue
        end = next(
            (
                j
                for j in range(i + 1, len(events))
                if events[j].name == name
                and events[j].phase in ("return", "raise")
                and (events[j].pid, events[j].thread_id) == (call.pid, call.thread_id)
            ),
            len(events),
        )
        spans.append((i, end, call.pid, call.thread_id))
    return spans


def _inside(index: int, event: LifecycleEvent, spans: list[tuple[int, int, int, int]]) -> bool:
    return any(s < index < e and p == event.pid and t == event.thread_id for s, e, p, t in spans)


def nesting(ctx: Context) -> bool:
    """The handler runs inside ``finish_request``; ``close_request`` inside ``shutdown_request``.

    ``finish_request`` "instantiates the RequestHandlerClass", so the handler's
    construction and hooks happen during that call, in its thread; and
    ``shutdown_request`` shuts down *and closes* the request, so each call of it
    makes exactly one ``close_request`` call before returning.
    """
    ok = True
    for conn, events in by_conn(ctx.events()).items():
        finishing = _spans(events, "finish_request")
        stray = [
            e.name
            for i, e in enumerate(events)
            if e.name in HANDLER_PATH and e.phase in ("call", "point")
            if not _inside(i, e, finishing)
        ]
        closes = [
            i for i, e in enumerate(events) if e.name == "close_request" and e.phase == "call"
        ]
        unclosed = [
            (s, e)
            for s, e, p, t in _spans(events, "shutdown_request")
            if sum(
                1 for i in closes if s < i < e and (events[i].pid, events[i].thread_id) == (p, t)
            )
            != 1
        ]
        if stray or unclosed:
            ok = False
            ctx.fail(
                "lifecycle.request.nesting",
                f"conn#{conn}: a hook ran outside the hook that should call it",
                expected="handler hooks inside finish_request; one close_request inside "
                "each shutdown_request",
                observed=(f"{', '.join(stray)} outside finish_request" if stray else "")
                + ("; " if stray and unclosed else "")
                + (
                    f"{len(unclosed)} shutdown_request call(s) without exactly one close_request"
                    if unclosed
                    else ""
                ),
                conn=conn,
                transcript=transcript(conn, events),
            )
    return ok


def handle_error_context(ctx: Context) -> bool:
    """``handle_error`` runs while the handler's exception is being handled, before shutdown.

    It is called from the ``except`` block (so ``sys.exc_info()`` is the
    handler's exception) and the request is shut down only after it returns.
    """
    ok = True
    for conn, events in by_conn(ctx.events()).items():
        raised = next((e for e in events if e.phase == "raise" and e.name in FAULT_HOOKS), None)
        for index, call in enumerate(events):
            if call.name != "handle_error" or call.phase != "call":
                continue
            current = call.detail.get("error") or ""
            if raised is not None and (raised.exc_type or "?") not in current:
                ok = False
                ctx.fail(
                    "errors.handle_error_context",
                    f"conn#{conn}: handle_error ran outside the handling of the exception",
                    expected=f"sys.exc_info() is the {raised.exc_type} {raised.name} raised",
                    observed=current.strip().splitlines()[-1] if current else "no exception",
                    conn=conn,
                )
            later = [
                e
                for e in events[index + 1 :]
                if e.name == "shutdown_request" and e.phase == "call" and e.pid == call.pid
            ]
            if not later:
                ok = False
                ctx.fail(
                    "errors.handle_error_before_shutdown",
                    f"conn#{conn}: the request was not shut down after handle_error",
                    expected="handle_error → shutdown_request → close_request",
                    observed=transcript(conn, events),
                    conn=conn,
                )
    return ok
