"""Clients come late, stay idle, or never come while servers wait with timeouts.

Invariant: ``handle_request()`` waits at most the smaller of ``server.timeout``
and the listening socket's own timeout, then calls ``handle_timeout()`` exactly
once and returns; with neither set it keeps waiting and handles the first
request in that same call.  ``serve_forever()`` ignores ``server.timeout``
(never calls ``handle_timeout()``) and calls ``service_actions()`` once per
poll while idle.  ``StreamRequestHandler.timeout`` bounds how long an idle
client holds a handler: the handler ends, the client sees the connection
close, and the server goes on to the next client.  Waiting costs no CPU: neither
call busy-waits, and ``serve_forever()`` without arguments polls every 0.5 s
(the documented default ``poll_interval``).
"""

from __future__ import annotations

import socket
import statistics
import time
from typing import Any

from harness import Context, ServerHandle, checks, echo_script, scenario
from harness.checks import within
from harness.support import Background, first_event, slack

#: CPU seconds a thread may spend in a call that only waits: a busy wait of a second
#: uses several times this even when the machine is loaded, a real wait a few ms.
WAIT_CPU = 0.1
#: serve_forever()'s documented default poll interval.
DEFAULT_POLL = 0.5

#: A listening-socket timeout long enough that honouring it instead of the
#: smaller one can never pass for honouring the smaller one.
LONG = 30.0


def _calls(ctx: Context, name: str, phase: str = "call") -> int:
    return sum(1 for e in ctx.events(name) if e.phase == phase)


def _wake(ctx: Context, srv: ServerHandle) -> None:
    """Send one request so that a ``handle_request()`` still waiting returns."""
    if ctx.transport.is_stream:
        ctx.connect(srv).close()
    else:
        ctx.datagram(srv).send(b"wake up")


def _timed_handle_request(ctx: Context, srv: ServerHandle, limit: float) -> float:
    """Run ``handle_request()``; if it outlives ``limit``, record it and wake it up.

    Returns how long it took (up to the wake-up).
    """
    call = Background(srv.server.handle_request, "handle_request()")
    if not call.wait(limit):
        ctx.fail(
            "timeouts.handle_request_returns",
            f"handle_request() was still waiting after {limit:.3f}s with no client",
            expected=f"returns within {limit:.3f}s",
            observed="still blocked; woken by a client",
        )
        elapsed = call.elapsed
        _wake(ctx, srv)
        call.finish(ctx.timeout(5.0), ctx.clock, "handle_request")
        return elapsed
    call.finish(0)
    return call.elapsed


@scenario(
    "timeouts.handle_request.expires",
    title="handle_request() returns after server.timeout and calls handle_timeout() once",
    transports=("tcp", "udp", "unix_stream"),
    params={"timeout": [0.05], "rounds": [2]},
)
def handle_request_expires(ctx: Context, timeout: float, rounds: int) -> None:
    """With no client, each handle_request() returns after about server.timeout (not
    before it) having called handle_timeout() exactly once."""
    srv = ctx.server(serve=False, timeout=timeout)
    for _ in range(rounds):
        elapsed = _timed_handle_request(ctx, srv, timeout + slack(ctx))
        within(
            ctx,
            "timeouts.handle_request_duration",
            "handle_request()",
            elapsed,
            0.9 * timeout,
            timeout + slack(ctx),
        )
    ctx.expect(
        _calls(ctx, "handle_timeout") == rounds,
        "timeouts.handle_timeout_once",
        "handle_timeout() was not called exactly once per expired handle_request()",
        expected=f"{rounds} call(s)",
        observed=f"{_calls(ctx, 'handle_timeout')} call(s)",
    )


@scenario(
    "timeouts.handle_request.smaller_wins",
    title="handle_request() honours the smaller of server.timeout and the socket's timeout",
    transports=("tcp", "udp"),
    kinds=("sync",),
    params={"smaller": ["server", "socket", "socket_only"], "timeout": [0.05]},
    profile="smoke",
)
def smaller_timeout_wins(ctx: Context, smaller: str, timeout: float) -> None:
    """When both server.timeout and the listening socket's timeout are set the smaller
    one bounds handle_request(); a socket timeout alone bounds it too."""
    server_timeout = {"server": timeout, "socket": LONG, "socket_only": None}[smaller]
    srv = ctx.server(serve=False, timeout=server_timeout)
    srv.server.socket.settimeout(timeout if smaller != "server" else LONG)
    elapsed = _timed_handle_request(ctx, srv, timeout + slack(ctx))
    within(
        ctx,
        "timeouts.handle_request_duration",
        "handle_request()",
        elapsed,
        0.9 * timeout,
        timeout + slack(ctx),
    )
    ctx.expect(
        _calls(ctx, "handle_timeout") == 1,
        "timeouts.handle_timeout_once",
        "handle_timeout() was not called once after the smaller timeout expired",
        expected="1 call",
        observed=f"{_calls(ctx, 'handle_timeout')} call(s)",
    )


@scenario(
    "timeouts.handle_request.waits",
    title="With timeout None, handle_request() waits for a late client and serves it",
    transports=("tcp", "udp"),
    kinds=("sync", "threading"),
    params={"late": [0.2]},
)
def handle_request_waits(ctx: Context, late: float) -> None:
    """With server.timeout None, handle_request() does not return before a client comes;
    a client arriving `late` seconds later is served by that same call, and
    handle_timeout() is never called."""
    srv = ctx.server(serve=False)
    call = Background(srv.server.handle_request, "handle_request()")
    if not ctx.expect(
        not call.wait(late),
        "timeouts.waits_for_request",
        "handle_request() with timeout None returned before any client came",
        expected=f"still waiting after {late:g}s",
        observed=f"returned after {call.elapsed:.3f}s",
    ):
        return
    payload = ctx.payload(64)
    results = ctx.swarm([echo_script(payload, ctx.transport.is_stream)], timeout=5.0)
    checks.echoed(ctx, results, [payload])
    call.finish(ctx.timeout(5.0), ctx.clock, "handle_request")
    ctx.expect(
        _calls(ctx, "handle_request") == 1
        and _calls(ctx, "get_request", "return") == 1
        and _calls(ctx, "handle_timeout") == 0,
        "timeouts.same_call",
        "the late client was not served by the one waiting handle_request() call",
        expected="1 handle_request, 1 get_request, 0 handle_timeout",
        observed=f"{_calls(ctx, 'handle_request')} handle_request, "
        f"{_calls(ctx, 'get_request', 'return')} get_request, "
        f"{_calls(ctx, 'handle_timeout')} handle_timeout",
    )


@scenario(
    "timeouts.serve_forever.ignores_timeout",
    title="serve_forever() ignores server.timeout: no handle_timeout() while serving",
    transports=("tcp", "udp"),
    params={"timeout": [0.01], "polls": [5]},
)
def serve_forever_ignores_timeout(ctx: Context, timeout: float, polls: int) -> None:
    """A server with a timeout shorter than its poll interval, idle for several polls and
    then serving a client, never calls handle_timeout() from serve_forever()."""
    srv = ctx.server(poll_interval=2 * timeout, timeout=timeout)
    ctx.wait_events(
        "service_actions", polls, timeout=polls * 2 * timeout + slack(ctx), phase="point"
    )
    payload = ctx.payload(64)
    results = ctx.swarm([echo_script(payload, ctx.transport.is_stream)], timeout=5.0)
    checks.echoed(ctx, results, [payload])
    srv.stop()
    ctx.expect(
        _calls(ctx, "handle_timeout") == 0,
        "timeouts.serve_forever_ignores_timeout",
        "serve_forever() called handle_timeout()",
        expected="0 calls",
        observed=f"{_calls(ctx, 'handle_timeout')} call(s)",
    )


@scenario(
    "timeouts.serve_forever.service_actions",
    title="service_actions() runs once per poll interval while serve_forever() idles",
    transports=("tcp",),
    params={"poll_interval": [0.02], "polls": [5]},
    requires=("service_actions",),
)
def service_actions_while_idle(ctx: Context, poll_interval: float, polls: int) -> None:
    """While serve_forever(poll_interval) idles, service_actions() is called repeatedly:
    at least `polls` times within a few intervals, and never more than about once
    per interval (no busy loop)."""
    srv = ctx.server(poll_interval=poll_interval)
    ctx.wait_events(
        "service_actions", polls, timeout=polls * poll_interval + slack(ctx), phase="point"
    )
    srv.stop()
    count = _calls(ctx, "service_actions", "point")
    start, end = (
        first_event(ctx, "serve_forever", "call"),
        first_event(ctx, "serve_forever", "return"),
    )
    window = (end.t - start.t) if start and end else 0.0
    most = window / poll_interval * 1.5 + 2
    ctx.expect(
        polls <= count <= most,
        "timeouts.service_actions_per_poll",
        f"service_actions() called {count} times in {window:.3f}s of idle serving",
        expected=f"at least {polls} and at most {most:.0f} (about one per {poll_interval:g}s)",
        observed=f"{count} calls",
    )


@scenario(
    "timeouts.handler.idle_client",
    title="StreamRequestHandler.timeout ends the handler of an idle client",
    transports=("tcp", "unix_stream"),
    params={"timeout": [0.05]},
    checks=("lifecycle", "concurrency", "resources"),
)
def idle_client_released(ctx: Context, timeout: float) -> None:
    """A client that connects and sends nothing holds its handler for about the handler
    timeout only: the handler ends (its error reported), the client sees the
    connection close, and the server serves the next client."""
    ctx.server(ctx.handler(timeout=timeout))
    idle = ctx.connect()
    ctx.wait_events("handle", 1)
    if not ctx.expect(
        idle.is_eof(timeout + slack(ctx)),
        "timeouts.handler_timeout",
        "an idle client's connection stayed open past the handler timeout",
        expected=f"EOF within {timeout + slack(ctx):.3f}s",
        observed="connection still open",
    ):
        return
    ctx.wait_events("handle", 1, phase="raise")
    call, end = first_event(ctx, "handle", "call"), first_event(ctx, "handle", "raise")
    held = (end.t - call.t) if call and end else 0.0
    within(
        ctx,
        "timeouts.handler_held",
        "the idle client's handler",
        held,
        0.9 * timeout,
        timeout + slack(ctx),
    )
    payload = ctx.payload(64)
    checks.echoed(ctx, ctx.swarm([echo_script(payload, True)], timeout=5.0), [payload])


def _cpu_of(fn: Any) -> Any:
    """``fn`` wrapped to return the CPU seconds its own thread spent in it."""

    def timed() -> float:
        start = time.thread_time()
        fn()
        return time.thread_time() - start

    return timed


@scenario(
    "timeouts.handle_request.long_timeout",
    title="A timeout over a second: handle_request() returns after it, without busy-waiting",
    transports=("tcp",),
    kinds=("sync",),
    params={"timeout": [1.1]},
)
def handle_request_long_timeout(ctx: Context, timeout: float) -> None:
    """With server.timeout above one second, handle_request() returns after about that
    long (the deadline is start + timeout, whatever its size) and its thread spends
    almost no CPU while waiting, before or after the deadline."""
    srv = ctx.server(serve=False, timeout=timeout)
    call = Background(_cpu_of(srv.server.handle_request), "handle_request()")
    limit = timeout + slack(ctx)
    if not call.wait(limit):
        ctx.fail(
            "timeouts.handle_request_returns",
            f"handle_request() was still waiting after {limit:.3f}s with no client",
            expected=f"returns within {limit:.3f}s",
            observed="still blocked; woken by a client",
        )
        _wake(ctx, srv)
        call.finish(ctx.timeout(5.0))
        return
    cpu = call.finish(0)
    within(
        ctx,
        "timeouts.handle_request_duration",
        "handle_request()",
        call.elapsed,
        0.9 * timeout,
        limit,
    )
    # Under gevent/eventlet every green thread shares one OS thread and its CPU clock.
    green = socket.socket.__module__.startswith(("gevent", "eventlet"))
    ctx.expect(
        green or (cpu is not None and cpu < WAIT_CPU),
        "timeouts.no_busy_wait",
        f"handle_request() used {cpu or 0:.3f}s of CPU waiting {call.elapsed:.3f}s",
        expected=f"under {WAIT_CPU:g}s of CPU (a blocking wait)",
        observed=f"{cpu or 0:.3f}s",
    )
    ctx.expect(
        _calls(ctx, "handle_timeout") == 1,
        "timeouts.handle_timeout_once",
        "handle_timeout() was not called once after the timeout expired",
        expected="1 call",
        observed=f"{_calls(ctx, 'handle_timeout')} call(s)",
    )


@scenario(
    "timeouts.serve_forever.default_poll",
    title="serve_forever() without arguments polls every 0.5 s while idle",
    transports=("tcp",),
    kinds=("sync",),
    params={"polls": [2]},
    requires=("service_actions",),
)
def serve_forever_default_poll(ctx: Context, polls: int) -> None:
    """An idle serve_forever() called without poll_interval calls service_actions() about
    every 0.5 s: never sooner (no busy loop), and typically not much later."""
    srv = ctx.server(serve=False)
    loop = Background(srv.server.serve_forever, "serve_forever()")
    ctx.wait_events(
        "service_actions", polls, timeout=polls * DEFAULT_POLL + slack(ctx), phase="point"
    )
    ctx.call(srv.server.shutdown, "shutdown()")
    loop.finish(ctx.timeout(5.0))
    times = [e.t for e in ctx.events("service_actions") if e.phase == "point"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    if not ctx.expect(
        len(gaps) >= polls - 1,
        "timeouts.service_actions_per_poll",
        f"service_actions() ran {len(times)} times in {polls * DEFAULT_POLL + slack(ctx):.1f}s",
        expected=f"at least {polls} calls, one per {DEFAULT_POLL}s",
        observed=f"{len(times)} calls",
    ):
        return
    shortest, middle = min(gaps), statistics.median(gaps)
    ctx.expect(
        shortest >= 0.9 * DEFAULT_POLL and middle < DEFAULT_POLL + 0.7,
        "timeouts.default_poll_interval",
        f"idle polls {shortest:.3f}s to {max(gaps):.3f}s apart (median {middle:.3f}s)",
        expected=f"about {DEFAULT_POLL}s apart: none under {0.9 * DEFAULT_POLL:.2f}s,"
        f" median under {DEFAULT_POLL + 0.7:.1f}s",
        observed=", ".join(f"{g:.3f}" for g in gaps[:8]),
    )
