"""The public checks library: structured findings about a case's events and clients.

Each check takes the scenario's ``Context`` (plus what it checks), records a
``Finding`` for every violation with the check id, expected vs observed and a
lifecycle transcript, and returns True when everything held.  Checks never
raise for a violation, so one case reports all it finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness._checks.concurrency import observed_design, request_fates
from harness._checks.nesting import expect_silence, handle_error_context, nesting
from harness._checks.timing import in_order, within
from harness._model.lifecycle import by_conn, entries, expected_paths, transcript
from harness._model.records import ClientResult, LifecycleEvent
from harness._runtime.swarm import Script, Send

if TYPE_CHECKING:
    from harness._runtime.context import Context

__all__ = [
    "clients_ok",
    "concurrency_placement",
    "echoed",
    "errors_handled",
    "expect_silence",
    "handle_error_context",
    "in_order",
    "lifecycle",
    "nesting",
    "requests_handled_once",
    "within",
]


def _raised(events: Sequence[LifecycleEvent], name: str) -> LifecycleEvent | None:
    return next((e for e in events if e.name == name and e.phase == "raise"), None)


def _accepted(events: Sequence[LifecycleEvent]) -> bool:
    verdicts = [
        e.detail.get("result") for e in events if e.name == "verify_request" and e.phase == "return"
    ]
    return not verdicts or bool(verdicts[0])


def lifecycle(ctx: Context, kind: str | None = None) -> bool:
    """Every request passed through its hooks exactly once each, in order.

    See ``harness._model.lifecycle`` for the rules.  Roles are told apart by process:
    events in the process that accepted the request (the serving process, or a
    pre-fork pool's worker) are the ``server`` path, events in any other process
    the ``child`` path of a forking server.
    """
    kind = kind or ctx.kind
    ok = True
    for conn, events in by_conn(ctx.events()).items():
        if not any(e.name == "get_request" for e in events):
            continue  # not a request (e.g. a connection id from elsewhere)
        # The process that accepted the request is its server side: the serving
        # process, or a pre-fork pool's worker that calls get_request() itself.
        owner = home_pid(events, ctx.log.owner_pid)
        setup_raised = _raised(events, "setup") is not None
        paths = expected_paths(kind, _accepted(events), setup_raised)
        steps = entries(events)
        observed = {
            "server": [e.name for e in steps if e.pid == owner],
            "child": [e.name for e in steps if e.pid != owner],
        }
        for role, want in paths.items():
            got = observed[role]
            if tuple(got) != want:
                ok = False
                mine = [e for e in events if (e.pid == owner) == (role == "server")]
                ctx.fail(
                    "lifecycle.order",
                    f"conn#{conn}: {role} hooks out of order, missing or repeated",
                    expected=" → ".join(want),
                    observed=" → ".join(got) or "(nothing)",
                    conn=conn,
                    transcript=transcript(conn, mine, want),
                )
        if kind != "forking" and observed["child"]:
            ok = False
            ctx.fail(
                "lifecycle.process",
                f"conn#{conn}: one request's hooks ran in more than one process in a {kind} server",
                expected=f"every hook in pid {owner}, which accepted it",
                observed=", ".join(sorted({str(e.pid) for e in steps if e.pid != owner})),
                conn=conn,
            )
    return ok


def home_pid(events: Sequence[LifecycleEvent], default: int) -> int:
    """The pid that accepted a request (``get_request`` returned its connection there)."""
    return next((e.pid for e in events if e.name == "get_request" and e.phase == "return"), default)


def errors_handled(ctx: Context) -> bool:
    """``handle_error`` is called exactly once for each request whose handler raised.

    An ``Exception`` from ``setup``, ``handle`` or ``finish`` must reach
    ``handle_error(request, client_address)`` once, with that request's client
    address; requests that raised nothing must not reach it (unless the
    scenario declared it with ``ctx.expect_error``).
    """
    ok = True
    for conn, events in by_conn(ctx.events()).items():
        raised = [
            e
            for e in events
            if e.phase == "raise" and e.name in ("setup", "handle", "finish") and _is_error(e)
        ]
        calls = [e for e in events if e.name == "handle_error" and e.phase == "call"]
        want = 1 if (raised or conn in ctx.expected_errors) else 0
        if len(calls) != want:
            ok = False
            ctx.fail(
                "errors.handle_error_once",
                f"conn#{conn}: handle_error called {len(calls)} time(s)",
                expected=f"{want} call(s)"
                + (f" after {raised[0].name} raised {raised[0].exc_type}" if raised else ""),
                observed=f"{len(calls)} call(s)",
                conn=conn,
                transcript=transcript(conn, events),
            )
        accepted = [
            e.detail.get("client_address")
            for e in events
            if e.name == "get_request" and e.phase == "return"
        ]
        for call in calls:
            address = call.detail.get("client_address")
            if accepted and address != accepted[0]:
                ok = False
                ctx.fail(
                    "errors.handle_error_args",
                    f"conn#{conn}: handle_error got the wrong client_address",
                    expected=repr(accepted[0]),
                    observed=repr(address),
                    conn=conn,
                )
    return ok


_NOT_ERRORS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")


def _is_error(event: LifecycleEvent) -> bool:
    return event.exc_type not in _NOT_ERRORS


def concurrency_placement(ctx: Context, kind: str | None = None) -> bool:
    """Handlers run where the server kind says: server thread, own thread, own process.

    ``sync``: every handler in the thread that called ``serve_forever`` or
    ``handle_request``, never two at once.  ``threading``: each handler in a
    thread of its own, not the serving thread, with ``daemon`` equal to the
    server's ``daemon_threads``.  ``forking``: each handler in a child process
    of its own.
    """
    kind = kind or ctx.kind
    ok = True
    handles = [e for e in ctx.events("handle") if e.phase == "call"]
    # Thread idents are reused by the OS: the name tells threads apart for sure.
    serving = {
        (e.pid, e.thread_id, e.thread_name)
        for e in ctx.events()
        if e.name in ("serve_forever", "handle_request") and e.phase == "call"
    }
    where = [(e.pid, e.thread_id, e.thread_name) for e in handles]
    if kind == "sync":
        strays = [h for h in handles if (h.pid, h.thread_id, h.thread_name) not in serving]
        ok &= ctx.expect(
            not strays,
            "concurrency.sync_thread",
            "a synchronous server ran a handler outside its serving thread",
            expected="handle() in the serve_forever()/handle_request() thread",
            observed=", ".join(sorted({h.thread_name for h in strays})),
        )
        ok &= _no_overlap(ctx)
    elif kind == "threading" and observed_design(ctx).startswith("pool"):
        # A pre-fork pool's workers accept and handle themselves: the request is
        # concurrent with the serving loop by construction; threads are reused.
        ctx.note("design", observed_design(ctx))
    elif kind == "threading":
        names = [w[2] for w in where]
        ok &= ctx.expect(
            len(set(names)) == len(names)
            and not any((h.pid, h.thread_id, h.thread_name) in serving for h in handles),
            "concurrency.thread_per_request",
            "handlers did not each get a new thread",
            expected=f"{len(names)} distinct handler threads",
            observed=f"{len(set(names))} distinct",
        )
    elif kind == "forking":
        pids = [w[0] for w in where]
        ok &= ctx.expect(
            len(set(pids)) == len(pids) and ctx.log.owner_pid not in pids,
            "concurrency.process_per_request",
            "handlers did not each run in a child process of their own",
            expected=f"{len(pids)} distinct child pids",
            observed=f"{len(set(pids) - {ctx.log.owner_pid})} distinct child pids",
        )
    return ok


def requests_handled_once(ctx: Context) -> bool:
    """No request lost: every request the server accepted is handled exactly once.

    Whatever the design (serving thread, thread or child per request, a
    pre-fork pool whose workers accept themselves), each request that
    ``get_request()`` returned, that ``verify_request()`` let through and
    whose path raised nothing gets one handler, in some process or thread.
    Followed by connection id, unique across processes.
    """
    fates = request_fates(ctx)
    design = observed_design(ctx) or "no request handled"
    if fates.lost:
        conns = sorted(fates.lost)
        first = conns[0]
        ctx.fail(
            "requests.lost",
            f"{len(conns)} accepted request(s) never handled: conn#{first} was accepted in "
            f"pid {fates.lost[first]} and no handler was ever made for it ({design})",
            expected="every accepted, verified request handled once, by some process or thread",
            observed=f"{fates.handled} handled, {len(conns)} lost: "
            + ", ".join(f"conn#{c} (pid {fates.lost[c]})" for c in conns[:10]),
            conn=first,
            conns=conns[:50],
        )
    if fates.repeated:
        conns = sorted(fates.repeated)
        first = conns[0]
        ctx.fail(
            "requests.repeated",
            f"{len(conns)} request(s) handled more than once: conn#{first} got "
            f"{fates.repeated[first]} handlers ({design})",
            expected="one handler per accepted request",
            observed=", ".join(f"conn#{c} ×{fates.repeated[c]}" for c in conns[:10]),
            conn=first,
            conns=conns[:50],
        )
    return not fates.lost and not fates.repeated


def _no_overlap(ctx: Context) -> bool:
    spans = []
    for conn, events in by_conn(ctx.events()).items():
        start = next((e.t for e in events if e.name == "handle" and e.phase == "call"), None)
        end = next(
            (e.t for e in events if e.name == "handle" and e.phase in ("return", "raise")), None
        )
        if start is not None and end is not None:
            spans.append((start, end, conn))
    spans.sort()
    for (_s1, e1, c1), (s2, _e2, c2) in zip(spans, spans[1:]):
        if s2 < e1:
            ctx.fail(
                "concurrency.sync_overlap",
                f"handlers of conn#{c1} and conn#{c2} overlapped in a synchronous server",
                expected="one handler at a time",
                observed=f"conn#{c2} started {e1 - s2:.4f}s before conn#{c1} ended",
            )
            return False
    return True


def clients_ok(ctx: Context, results: Sequence[ClientResult]) -> bool:
    """Every client finished its script without an error."""
    bad = [r for r in results if not r.ok]
    if bad:
        first = bad[0]
        ctx.fail(
            "clients.ok",
            f"{len(bad)} of {len(results)} client(s) failed",
            expected="every client completes its script",
            observed=f"client {first.index}: {first.error_type}: {first.error}",
            failed=[r.index for r in bad[:50]],
        )
    return not bad


def echoed(ctx: Context, results: Sequence[ClientResult], expected: Sequence[bytes]) -> bool:
    """Client ``i`` received exactly ``expected[i]`` — its own bytes, nothing else."""
    wrong = [r for r in results if r.received != expected[r.index]]
    if wrong:
        first = wrong[0]
        want = expected[first.index]
        ctx.fail(
            "replies.echo",
            f"{len(wrong)} of {len(results)} client(s) did not get exactly their own bytes back",
            expected=f"client {first.index}: {len(want)} bytes {_peek(want)}",
            observed=f"{len(first.received)} bytes {_peek(first.received)}"
            + (f" ({first.error_type}: {first.error})" if first.error else ""),
            clients=[r.index for r in wrong[:50]],
        )
    return not wrong


def _peek(data: bytes) -> str:
    return repr(data[:16]) + ("…" if len(data) > 16 else "")


def scripts_expected(scripts: Sequence[Script]) -> list[bytes]:
    """What an echo server sends back to each script: the bytes it sent."""
    return [b"".join(op.data for op in script if isinstance(op, Send)) for script in scripts]


def summary(value: Any) -> str:
    """A short repr for findings."""
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
