"""Clients arrive together at slow or held-back handlers of sync, threading and forking servers.

Invariant: a synchronous server runs one handler at a time, in its serving
thread.  ``ThreadingMixIn`` runs every request at once in a new thread of its
own whose daemon flag is ``daemon_threads``; ``server_close()`` waits for the
running non-daemon handler threads unless ``block_on_close`` is false, and a
long-running server keeps no finished thread.  ``ForkingMixIn`` runs every
request in a child process of its own while only the parent accepts, never
has more than ``max_children`` children at once under ``serve_forever()``
(CPython's default: 40), reaps children while serving and when
``handle_request()`` times out, and ``server_close()`` waits for its children and
leaves no zombie.  A child exits with status 0 after a request handled without
error and with a non-zero status after one whose handler raised.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from harness import (
    Context,
    RecvAll,
    RecvDatagram,
    Send,
    ServerHandle,
    ShutdownWrite,
    checks,
    echo_script,
    gated,
    param,
    scenario,
)
from harness.support import (
    FAIL_TAG,
    PASS_TAG,
    Background,
    BackgroundClose,
    child_states,
    handle_spans,
    handler_pids,
    live_children,
    live_instances,
    max_overlap,
    request_ends,
    tagged_handler,
    wait_children,
)

#: How long each deliberately slow handler of a synchronous server takes.
HOLD = 0.02
#: How long a server_close() that must wait is given to (wrongly) return early.
EARLY_WINDOW = 0.25
#: How long extra children get to appear beyond max_children before we look.
OVERFORK_WINDOW = 0.3
#: CPU seconds the worker may use in OVERFORK_WINDOW while the server waits for a child:
#: a blocking wait takes a few ms, a waitpid(WNOHANG) spin most of the window.
WAIT_CPU = 0.15
#: ``ForkingMixIn.max_children`` as every CPython since 2.x defines it.
DEFAULT_MAX_CHILDREN = 40
ZOMBIE = psutil.STATUS_ZOMBIE


@scenario(
    "concurrency.sync.one_at_a_time",
    title="A synchronous server runs slow handlers one at a time, in its serving thread",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync",),
    params={"clients": [6]},
    checks=("lifecycle", "concurrency", "resources"),
)
def sync_one_at_a_time(ctx: Context, clients: int) -> None:
    """N clients arriving together at handlers that each take a while are served one after
    another in the serving thread: no two handlers overlap, and every client gets its echo."""
    ctx.server(ctx.handler(gated(ctx.gate(), timeout=HOLD)), request_queue_size=clients)
    payloads = [ctx.payload(16) for _ in range(clients)]
    started = time.monotonic()
    results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
    wall = time.monotonic() - started
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, payloads)
    ctx.expect(
        wall >= 0.9 * clients * HOLD,
        "concurrency.sync_serial",
        "the slow handlers of a synchronous server finished faster than one after another",
        expected=f">= {0.9 * clients * HOLD:.3f}s for {clients} handlers of {HOLD}s",
        observed=f"{wall:.3f}s",
    )


def _requests_done(ctx: Context, count: int) -> None:
    """Wait until ``count`` requests have run their last hook.

    Clients see EOF at ``shutdown_request()``, before the handler thread or
    child is done; a server that does not join its handlers (daemon threads,
    ``block_on_close = False``) must be waited for here, or the post-checks
    would read an unfinished lifecycle.
    """
    ctx.wait_events("shutdown_request", count, phase="return")


def _meet(barrier: threading.Barrier) -> Callable[[Any], None]:
    """Wait at ``barrier`` (only handlers running at the same time pass), answer + or -."""

    def behaviour(handler: Any) -> None:
        try:
            barrier.wait()
            mark = b"+"
        except threading.BrokenBarrierError:
            mark = b"-"
        handler.wfile.write(mark)

    return behaviour


@scenario(
    "concurrency.threading.overlap",
    title="ThreadingMixIn runs all requests at once, each in a new thread",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("threading",),
    params={"clients": [8, param(64, profile="full")]},
    checks=("lifecycle", "concurrency", "resources"),
    deadline=30.0,
)
def threading_overlap(ctx: Context, clients: int) -> None:
    """N handlers each wait at an N-party barrier and all pass it, which only handlers
    running at the same time can: every request runs at once, in a new thread of its own,
    and the batch takes about one handler's time, not N."""
    barrier = threading.Barrier(clients, timeout=ctx.timeout(5.0))
    ctx.server(ctx.handler(_meet(barrier)), request_queue_size=clients)
    script = (
        (ShutdownWrite(), RecvAll()) if ctx.transport.is_stream else (Send(b"?"), RecvDatagram())
    )
    started = time.monotonic()
    results = ctx.swarm([script] * clients)
    wall = time.monotonic() - started
    checks.clients_ok(ctx, results)
    passed = sum(r.received == b"+" for r in results)
    ctx.expect(
        passed == clients,
        "concurrency.overlap",
        f"only {passed} of {clients} handlers were running at the same time",
        expected=f"all {clients} handlers pass a {clients}-party barrier together",
        observed=f"{passed} passed, batch took {wall:.2f}s",
    )


@scenario(
    "concurrency.threading.daemon",
    title="Handler threads are daemon threads exactly when daemon_threads says so",
    transports=("tcp", "udp"),
    kinds=("threading",),
    params={"daemon_threads": [False, True]},
    checks=("lifecycle", "concurrency", "resources"),
)
def threading_daemon(ctx: Context, daemon_threads: bool) -> None:
    """Every handler thread's daemon flag equals the server's ``daemon_threads``."""
    ctx.server(daemon_threads=daemon_threads)
    payloads = [ctx.payload(32) for _ in range(4)]
    results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
    checks.echoed(ctx, results, payloads)
    _requests_done(ctx, len(payloads))
    flags = [e.daemon for e in ctx.events("handle") if e.phase == "call"]
    ctx.expect(
        flags == [daemon_threads] * len(payloads),
        "concurrency.daemon_threads",
        "a handler thread's daemon flag differs from the server's daemon_threads",
        expected=f"{len(payloads)} handler threads with daemon={daemon_threads}",
        observed=f"daemon flags {flags}",
    )


def _close_while_busy(ctx: Context, handle: ServerHandle, clients: int, window: float) -> bool:
    """Hold ``clients`` handlers busy, close the server, release them; True if closing
    returned within ``window`` while they were all still held.  Checks the echoes."""
    conns = [ctx.connect() for _ in range(clients)]
    ctx.expect(
        ctx.wait_events("handle", clients),
        "concurrency.busy",
        "not every held client reached its handler",
        expected=f"{clients} handlers running",
        observed=f"{len([e for e in ctx.events('handle') if e.phase == 'call'])}",
    )
    handle.stop()
    closing = BackgroundClose(handle, ctx.timeout(10.0))
    early = closing.wait(window)
    payloads = [ctx.payload(32) for _ in conns]
    for conn, payload in zip(conns, payloads):
        conn.send(payload)
        conn.shutdown_write()
    replies = [conn.recv_until_eof() for conn in conns]
    ctx.expect(replies == payloads, "replies.echo", "a held client did not get its echo")
    _requests_done(ctx, clients)
    closing.wait(ctx.timeout(15.0))
    if closing.error is not None:
        raise closing.error
    return early


@scenario(
    "concurrency.close.waits",
    title="server_close() waits for running handlers and leaves no zombie (default settings)",
    transports=("tcp", "unix_stream"),
    kinds=("threading", "forking"),
    params={"clients": [3]},
    checks=("lifecycle", "concurrency", "resources"),
)
def close_waits(ctx: Context, clients: int) -> None:
    """With default settings, ``server_close()`` returns only after every running handler
    thread (threading) or child process (forking) has finished; no child is left a zombie."""
    handle = ctx.server(request_queue_size=clients)
    early = _close_while_busy(ctx, handle, clients, EARLY_WINDOW)
    leftovers = child_states(handler_pids(ctx))  # right after server_close() returned
    closed = min((e.t for e in ctx.events("server_close") if e.phase == "return"), default=0.0)
    late = [conn for conn, end in request_ends(ctx).items() if end > closed]
    ctx.expect(
        not early and not late and not leftovers,
        "concurrency.close_waits",
        "server_close() returned while handlers were still running, or left children behind",
        expected=f"server_close() returns after all {clients} handlers end, every child reaped",
        observed=f"returned within {EARLY_WINDOW}s: {early}; handlers still running then: "
        f"{late}; children left: {leftovers}",
    )


def _close_no_block(ctx: Context, clients: int, what: str) -> None:
    """With ``block_on_close = False``, ``server_close()`` returns while ``clients``
    handlers (threads or children) are held; they finish afterwards."""
    handle = ctx.server(request_queue_size=clients, block_on_close=False)
    early = _close_while_busy(ctx, handle, clients, window=ctx.timeout(3.0))
    ctx.expect(
        early,
        "concurrency.close_no_block",
        f"server_close() waited for handler {what} although block_on_close is False",
        expected=f"server_close() returns while {clients} handlers are held",
        observed="it returned only after they were released",
    )


@scenario(
    "concurrency.threading.close_no_block",
    title="With block_on_close = False, server_close() does not wait for handler threads",
    transports=("tcp", "unix_stream"),
    kinds=("threading",),
    params={"clients": [3]},
    requires=("block_on_close",),
    checks=("lifecycle", "concurrency", "resources"),
)
def close_no_block(ctx: Context, clients: int) -> None:
    """With ``block_on_close = False`` (non-daemon threads), ``server_close()`` returns while
    handler threads are still running; they finish afterwards."""
    _close_no_block(ctx, clients, "threads")


@scenario(
    "concurrency.forking.close_no_block",
    title="With block_on_close = False, server_close() does not wait for children",
    transports=("tcp",),
    kinds=("forking",),
    params={"clients": [2]},
    requires=("forking_block_on_close",),
    checks=("lifecycle", "concurrency", "resources"),
)
def forking_close_no_block(ctx: Context, clients: int) -> None:
    """With ForkingMixIn's ``block_on_close = False``, ``server_close()`` returns while
    children still handle requests; they finish afterwards (and are reaped here, as the
    application that chose not to wait would)."""
    _close_no_block(ctx, clients, "children")
    pids = handler_pids(ctx)
    wait_children(pids, lambda s: all(v == ZOMBIE for v in s.values()), ctx.timeout(5.0))
    for pid in child_states(pids):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            continue


def _echo_batches(ctx: Context, batch: int, count: int) -> None:
    """``count`` rounds of ``batch`` concurrent echo clients, each round's handlers done."""
    for _ in range(count):
        before = len([e for e in ctx.events("shutdown_request") if e.phase == "return"])
        payloads = [ctx.payload(16) for _ in range(batch)]
        results = ctx.swarm([echo_script(p, True) for p in payloads])
        checks.echoed(ctx, results, payloads)
        _requests_done(ctx, before + batch)


@scenario(
    "concurrency.threading.no_retention",
    title="A ThreadingMixIn server keeps no finished handler thread",
    transports=("tcp",),
    kinds=("threading",),
    params={"requests": [200, param(1000, profile="full")], "batch": [10]},
    checks=("lifecycle", "concurrency", "resources"),
    deadline=60.0,
)
def no_retention(ctx: Context, requests: int, batch: int) -> None:
    """Over many requests the live objects of the implementation's classes and of
    ``threading`` (``Thread``, its events and conditions) stay flat after the first batch:
    no ended handler thread is kept."""
    ctx.server(request_queue_size=batch)
    modules = (ctx.impl.module.__name__, "threading")
    _echo_batches(ctx, batch, 1)
    before = live_instances(modules)
    _echo_batches(ctx, batch, requests // batch - 1)
    grown = {k: n for k, n in (live_instances(modules) - before).items() if n > 2 * batch}
    ctx.expect(
        not grown,
        "concurrency.threads_retained",
        f"objects kept growing over {requests} requests: "
        + ", ".join(f"{n} more {k}" for k, n in sorted(grown.items())),
        expected=f"at most {2 * batch} more of any class (two batches of {batch} requests)",
        observed=", ".join(f"{k} +{n}" for k, n in sorted(grown.items())),
    )


@scenario(
    "concurrency.accept_in_server",
    title="Only the serving thread of the server's process accepts requests",
    transports=("tcp", "udp"),
    kinds="all",
    params={"clients": [10]},
    checks=("lifecycle", "concurrency", "resources"),
)
def accept_in_server(ctx: Context, clients: int) -> None:
    """``get_request()`` runs only in the thread running ``serve_forever()`` in the
    server's process: never in a handler thread, never in a forked child."""
    ctx.server(request_queue_size=clients)
    payloads = [ctx.payload(64) for _ in range(clients)]
    results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
    checks.echoed(ctx, results, payloads)
    serving = {(e.pid, e.thread_id) for e in ctx.events("serve_forever") if e.phase == "call"}
    strays = [e for e in ctx.events("get_request") if (e.pid, e.thread_id) not in serving]
    ctx.expect(
        not strays,
        "concurrency.accept_in_server",
        f"get_request() ran {len(strays)} time(s) outside the serving thread",
        expected="every get_request() in the serve_forever() thread of the server's process",
        observed=", ".join(sorted({f"pid {e.pid} {e.thread_name}" for e in strays})[:10]),
    )


@scenario(
    "concurrency.forking.max_children",
    title="ForkingMixIn never has more than max_children children at once",
    transports=("tcp",),  # ForkingMixIn counts children alike on every transport
    kinds=("forking",),
    params={"max_children": [2, None], "extra": [3]},
    requires=("max_children",),
    checks=("lifecycle", "concurrency", "resources"),
)
def forking_max_children(ctx: Context, max_children: int | None, extra: int) -> None:
    """Under ``serve_forever()``, with ``extra`` more clients waiting than ``max_children``,
    exactly ``max_children`` handler processes run at once (None: the class's default,
    which must be CPython's 40), the server blocks (no busy wait) until one exits, and
    every client is served in the end."""
    attrs = {} if max_children is None else {"max_children": max_children}
    max_children = DEFAULT_MAX_CHILDREN if max_children is None else max_children
    clients = max_children + extra
    ctx.server(request_queue_size=clients, **attrs)
    conns = [ctx.connect() for _ in range(clients)]
    ctx.expect(
        ctx.wait_events("handle", max_children),
        "concurrency.forking_parallel",
        f"fewer than max_children={max_children} requests ran at once",
        expected=f"{max_children} handlers running while {clients} clients wait",
        observed=f"{len(handler_pids(ctx))} handler processes",
    )
    cpu = time.process_time()
    overforked = ctx.wait_events("handle", max_children + 1, timeout=OVERFORK_WINDOW)
    cpu = time.process_time() - cpu
    live = live_children()
    payloads = [ctx.payload(32) for _ in conns]
    for conn, payload in zip(conns, payloads):
        conn.send(payload)
        conn.shutdown_write()
    replies = [conn.recv_until_eof() for conn in conns]
    ctx.expect(replies == payloads, "replies.echo", "a waiting client was not served")
    peak = max_overlap(handle_spans(ctx))
    ctx.expect(
        not overforked and len(live) <= max_children and peak <= max_children,
        "concurrency.max_children",
        "more than max_children handler processes existed at once",
        expected=f"at most {max_children} of {clients} waiting clients served at once",
        observed=f"{len(live)} live children while clients waited; peak {peak} handlers",
    )
    green = socket.socket.__module__.startswith(("gevent", "eventlet"))  # one hub, one clock
    ctx.expect(
        green or cpu < WAIT_CPU,
        "concurrency.max_children_blocks",
        f"the server used {cpu:.3f}s of CPU in {OVERFORK_WINDOW}s waiting for a child to exit",
        expected=f"a blocking wait: under {WAIT_CPU}s of CPU",
        observed=f"{cpu:.3f}s",
    )


@scenario(
    "concurrency.forking.reaped_while_serving",
    title="ForkingMixIn reaps exited children while serve_forever() runs",
    transports=("tcp", "udp"),
    kinds=("forking",),
    params={"clients": [5]},
    checks=("lifecycle", "concurrency", "resources"),
)
def reaped_while_serving(ctx: Context, clients: int) -> None:
    """While ``serve_forever()`` runs idle, children that have exited are reaped within a
    poll interval or two (two ``service_actions()`` calls): none is left a zombie."""
    ctx.server(poll_interval=0.05)
    payloads = [ctx.payload(32) for _ in range(clients)]
    results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
    checks.echoed(ctx, results, payloads)
    pids = handler_pids(ctx)
    wait_children(pids, lambda s: all(v == ZOMBIE for v in s.values()), ctx.timeout(5.0))
    polls = len(ctx.events("service_actions"))
    # Two more polls; an implementation without service_actions() gets 1.5 s instead.
    ctx.wait_events("service_actions", polls + 2, timeout=1.5, phase="point")
    zombies = sorted(p for p, s in child_states(pids).items() if s == ZOMBIE)
    ctx.expect(
        not zombies,
        "concurrency.forking_reaped",
        f"{len(zombies)} exited child(ren) not reaped while serve_forever() ran",
        expected="every exited child reaped within two poll intervals",
        observed=f"zombies: {zombies}",
    )


@scenario(
    "concurrency.forking.reaped_on_timeout",
    title="ForkingMixIn reaps exited children when handle_request() times out",
    transports=("tcp",),
    kinds=("forking",),
    checks=("lifecycle", "concurrency", "resources"),
)
def reaped_on_timeout(ctx: Context) -> None:
    """A ``handle_request()`` that times out with no client (``handle_timeout()``) reaps the
    children that have exited."""
    handle = ctx.server(serve=False, timeout=0.05)
    client = ctx.connect()
    payload = ctx.payload(32)
    client.send(payload)
    client.shutdown_write()
    handle.handle_request()
    ctx.expect(client.recv_until_eof() == payload, "replies.echo", "the client got no echo")
    pids = handler_pids(ctx)
    wait_children(pids, lambda s: all(v == ZOMBIE for v in s.values()), ctx.timeout(5.0))
    handle.handle_request()  # nobody connects: times out after 0.05 s
    timeouts = [e for e in ctx.events("handle_timeout") if e.phase == "call"]
    left = child_states(pids)
    ctx.expect(
        bool(timeouts) and not left,
        "concurrency.forking_reaped_on_timeout",
        "an exited child was not reaped by a handle_request() that timed out",
        expected="handle_timeout() called and the exited child reaped",
        observed=f"handle_timeout() calls: {len(timeouts)}; children left: {left}",
    )


def _exit_status(ctx: Context, pid: int) -> int | None:
    """The exit status of child ``pid`` once it has exited, left unreaped (WNOWAIT)."""
    wait_children([pid], lambda s: s.get(pid) == ZOMBIE, ctx.timeout(5.0))
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    if info is None or info.si_code != os.CLD_EXITED:
        return None
    return info.si_status


@scenario(
    "concurrency.forking.exit_status",
    title="A forked child exits 0 after a request handled, non-zero after a handler raised",
    transports=("tcp", "udp"),
    kinds=("forking",),
    params={"outcome": ["handled", "raised"]},
    checks=("lifecycle", "concurrency", "resources"),
)
def forking_exit_status(ctx: Context, outcome: str) -> None:
    """The child that handled a request exits with status 0, and the child whose handler
    raised (after handle_error) with a non-zero status, so a supervisor that reaps
    them can tell.  handle_request() drives the server: nothing reaps before we look."""
    ctx.server(tagged_handler("handle"), serve=False)
    payload = FAIL_TAG if outcome == "raised" else PASS_TAG + ctx.payload(16)
    stream = ctx.connect() if ctx.transport.is_stream else None
    (stream or ctx.datagram()).send(payload)
    if stream is not None:
        stream.shutdown_write()
    ctx.servers[-1].handle_request()
    ctx.wait_events("shutdown_request", 1, phase="return")
    pids = sorted(handler_pids(ctx))
    status = _exit_status(ctx, pids[0]) if pids else None
    good = status == 0 if outcome == "handled" else status not in (0, None)
    ctx.expect(
        good,
        "concurrency.forking_exit_status",
        f"the child whose handler {outcome} exited with status {status}",
        expected="exit status 0" if outcome == "handled" else "a non-zero exit status",
        observed=f"status {status}" if status is not None else "no exit status seen",
    )


@scenario(
    "concurrency.forking.reaped_elsewhere",
    title="Children reaped by someone else no longer count against max_children",
    transports=("tcp",),
    kinds=("forking",),
    params={"max_children": [3], "driver": ["serve_forever", "handle_request"]},
    requires=("max_children",),
    checks=("lifecycle", "concurrency", "resources"),
)
def reaped_elsewhere(ctx: Context, max_children: int, driver: str) -> None:
    """Children the application reaped itself (a SIGCHLD handler would) are all forgotten
    when the server next collects (handle_timeout()), so afterwards max_children requests
    still run at once under serve_forever(); under handle_request(), a timeout with fewer
    than max_children children running returns without waiting for one of them."""
    handle = ctx.server(serve=False, max_children=max_children, timeout=0.05)
    early = max_children - 1
    payloads = [ctx.payload(16) for _ in range(early)]
    for payload in payloads:
        client = ctx.connect()
        client.send(payload)
        client.shutdown_write()
        handle.handle_request()
        ctx.expect(client.recv_until_eof() == payload, "replies.echo", "the client got no echo")
    pids = handler_pids(ctx)
    wait_children(pids, lambda s: all(v == ZOMBIE for v in s.values()), ctx.timeout(5.0))
    for pid in child_states(pids):
        os.waitpid(pid, 0)  # reaped by the application, not by the server
    handle.handle_request()  # nobody connects: handle_timeout() collects
    if driver == "serve_forever":
        handle.serve(0.01)
        conns = [ctx.connect() for _ in range(max_children)]
        at_once = ctx.wait_events("handle", early + max_children, timeout=3.0)
    else:
        # No serve_forever() iteration collects in between: one stale pid left by the
        # collection above would make the next timeout wait on a running child.
        conns = [ctx.connect() for _ in range(max_children - 1)]
        for _ in conns:
            handle.handle_request()
        waiter = Background(handle.handle_request, "handle_request()")
        at_once = waiter.wait(ctx.timeout(2.0))
    payloads = [ctx.payload(16) for _ in conns]
    for conn, payload in zip(conns, payloads):
        conn.send(payload)
        conn.shutdown_write()
    replies = [conn.recv_until_eof() for conn in conns]
    if driver != "serve_forever":
        waiter.wait(ctx.timeout(5.0))
    ctx.expect(replies == payloads, "replies.echo", "a held client did not get its echo")
    ctx.expect(
        at_once,
        "concurrency.forking_stale_children",
        "the server waited for a child to exit although it had fewer than max_children",
        expected=f"{len(conns)} requests handled at once (max_children={max_children}, "
        f"{early} earlier children reaped by the application)",
        observed="a request waited for an earlier one to end"
        if driver == "serve_forever"
        else "handle_request()'s timeout waited for a running child",
    )
