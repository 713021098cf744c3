"""Servers are stopped, restarted, closed and rebound while clients come and go.

Invariant: ``shutdown()`` returns only after ``serve_forever()`` has returned —
within about ``poll_interval`` when idle, after the request in progress when
busy — and ``serve_forever()`` can then run again; after ``serve_forever()``
ended by an exception, ``shutdown()`` still returns (it does not deadlock).
``server_close()`` (directly or by leaving a ``with`` block) releases the
listening socket.  The constructor binds and activates only when asked to,
records the real bound address, raises ``OSError`` without leaking its socket
when the address is taken, and honours ``allow_reuse_address``,
``allow_reuse_port`` and ``request_queue_size``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from harness import (
    ClientResult,
    Context,
    ExpectEOF,
    RecvLine,
    Send,
    ServerHandle,
    checks,
    echo_script,
    gated,
    scenario,
)
from harness.checks import in_order, within
from harness.support import Background, slack


def _calls(ctx: Context, name: str, phase: str = "call") -> int:
    return sum(1 for e in ctx.events(name) if e.phase == phase)


def _echo_once(ctx: Context, srv: ServerHandle, what: str, clients: int = 1) -> bool:
    """``clients`` concurrent echo exchanges with ``srv``; a finding unless all succeed."""
    payloads = [ctx.payload(64) for _ in range(clients)]
    results = ctx.swarm(
        [echo_script(p, ctx.transport.is_stream) for p in payloads], srv, timeout=3.0
    )
    bad = [r for r in results if not r.ok or r.received != payloads[r.index]]
    return ctx.expect(
        not bad,
        "shutdown.serves",
        f"{what}: {len(bad)} of {clients} client(s) not served",
        expected="every client gets its bytes back",
        observed=f"{bad[0].error_type}: {bad[0].error}" if bad else "",
    )


def _rebind(ctx: Context, srv: ServerHandle, address: Any) -> bool:
    """Bind and activate a ``bind_and_activate=False`` server on ``address``, then serve."""
    srv.server.server_address = address
    try:
        ctx.call(srv.server.server_bind, "server_bind()")
    except OSError as exc:
        ctx.fail(
            "shutdown.rebind",
            f"binding a second server to {address!r} failed",
            expected="server_bind() succeeds",
            observed=f"{type(exc).__name__}: {exc}",
        )
        return False
    ctx.call(srv.server.server_activate, "server_activate()")
    srv.serve()
    return True


def _fd_target(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _parking(ctx: Context, parked: threading.Event, release: threading.Event) -> Any:
    """A ``service_actions`` that parks the serving loop inside it until ``release``."""
    base: Any = ctx.server_class()
    limit = ctx.timeout(5.0)

    def service_actions(self: Any) -> None:
        base.service_actions(self)
        parked.set()
        release.wait(limit)

    return service_actions


@scenario(
    "shutdown.stops_loop",
    title="shutdown() returns only once serve_forever() has stopped, promptly when idle",
    transports=("tcp", "udp"),
    params={"loop": ["idle", "held"], "poll_interval": [0.05]},
    requires=("service_actions",),
    profile="smoke",
)
def shutdown_stops_loop(ctx: Context, loop: str, poll_interval: float) -> None:
    """shutdown() of an idle server returns within about poll_interval; while the loop is
    held inside service_actions() shutdown() keeps waiting, and returns promptly
    once the loop may go on."""
    release, parked = ctx.gate(), threading.Event()
    held = {"service_actions": _parking(ctx, parked, release)} if loop == "held" else {}
    srv = ctx.server(poll_interval=poll_interval, **held)
    ctx.wait_events("serve_forever", 1)
    if held:
        ctx.wait_until(parked.is_set, "the loop parked in service_actions()")
    stop = Background(srv.server.shutdown, "shutdown()")
    released = stop.started
    if held:
        ctx.wait_events("shutdown", 1)
        ctx.expect(
            not stop.wait(0.1),
            "shutdown.waits_for_loop",
            "shutdown() returned while serve_forever() was still running",
            expected="shutdown() blocked while the loop is in service_actions()",
            observed=f"returned after {stop.elapsed:.3f}s",
        )
        released = time.monotonic()
        release.set()
    stop.finish(ctx.timeout(5.0), ctx.clock, "shutdown")
    elapsed = stop.elapsed - (released - stop.started)
    within(ctx, "shutdown.prompt", "shutdown()", elapsed, 0.0, poll_interval + slack(ctx))


@scenario(
    "shutdown.busy",
    title="shutdown() lets the request in progress finish before it returns",
    transports=("tcp", "unix_stream"),
    kinds=("sync",),
    params={"size": [16384]},
)
def shutdown_busy(ctx: Context, size: int) -> None:
    """shutdown() called while a synchronous server is inside a handler returns only after
    that handler has returned, and the client gets its full reply."""
    gate = ctx.gate()
    srv = ctx.server(ctx.handler(gated(gate)))
    payload = ctx.payload(size)
    client = ctx.connect()
    client.send(payload)
    client.shutdown_write()
    ctx.wait_events("handle", 1)
    stop = Background(srv.server.shutdown, "shutdown()")
    ctx.wait_events("shutdown", 1)
    gate.set()
    checks.echoed(ctx, [ClientResult(0, True, client.recv_until_eof())], [payload])
    stop.finish(ctx.timeout(5.0), ctx.clock, "shutdown")
    in_order(
        ctx,
        "shutdown.waits_for_request",
        ("shutdown", "call"),
        ("handle", "return"),
        ("shutdown", "return"),
    )


@scenario(
    "shutdown.restart",
    title="serve_forever() serves again after shutdown()",
    transports=("tcp", "udp"),
    kinds=("sync", "threading"),
    params={"rounds": [3]},
)
def restart(ctx: Context, rounds: int) -> None:
    """serve_forever() → shutdown() can be repeated on one server: each new
    serve_forever() serves clients until the next shutdown()."""
    srv = ctx.server(serve=False)
    for round_ in range(1, rounds + 1):
        srv.serve()
        if not _echo_once(ctx, srv, f"serve_forever() #{round_}"):
            return
        srv.stop()
    ctx.expect(
        _calls(ctx, "serve_forever", "return") == rounds,
        "shutdown.restart",
        "serve_forever() did not return once per shutdown()",
        expected=f"{rounds} returns",
        observed=f"{_calls(ctx, 'serve_forever', 'return')} returns",
    )


def _exit_server(handler: Any) -> None:
    raise SystemExit("handler asks the serving thread to exit")


@scenario(
    "shutdown.after_serve_error",
    title="shutdown() does not deadlock after serve_forever() ended by an exception",
    transports=("tcp", "udp"),
    kinds=("sync",),
)
def shutdown_after_serve_error(ctx: Context) -> None:
    """A SystemExit from a synchronous server's handler ends serve_forever() with that
    exception, and a later shutdown() returns at once.  CPython documents a deadlock
    unless serve_forever() is running, but on any exit (3.8-3.13) serve_forever()
    releases shutdown() in a finally block; only a never-started loop deadlocks."""
    srv = ctx.server(_exit_server)
    if ctx.transport.is_stream:
        ctx.connect().shutdown_write()
    else:
        ctx.datagram().send(b"exit")
    ended = ctx.wait_events("serve_forever", 1, phase="raise")
    ctx.expect(
        ended and isinstance(srv.serve_error, SystemExit),
        "shutdown.serve_error",
        "a SystemExit from the handler did not end serve_forever()",
        expected="serve_forever() raises SystemExit",
        observed=repr(srv.serve_error),
    )
    stop = Background(srv.server.shutdown, "shutdown() after serve_forever() raised")
    stop.finish(ctx.timeout(slack(ctx)), ctx.clock, "shutdown")
    within(ctx, "shutdown.prompt", "shutdown()", stop.elapsed, 0.0, slack(ctx))


def _with_block(server: Any) -> None:
    """Enter and leave ``with server:`` (its ``__exit__`` calls ``server_close()``)."""
    with server:
        pass


@scenario(
    "shutdown.server_close",
    title="server_close() and the context manager release the listening socket",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync", "threading"),
    params={"how": ["call", "with"]},
)
def server_close_releases(ctx: Context, how: str) -> None:
    """server_close() — called directly, or by leaving a `with` block — closes the
    listening socket: its descriptor is gone and new clients are refused."""
    srv = ctx.server(serve=False)
    fd = srv.listening_fd()
    target = _fd_target(fd)
    if how == "with":
        ctx.require("context_manager")
        ctx.call(lambda: _with_block(srv.server), "leaving a with block", 3.0, "server_close")
    else:
        ctx.call(srv.server.server_close, "server_close()", 3.0, "server_close")
    ctx.expect(
        _calls(ctx, "server_close") == 1,
        "shutdown.server_close_called",
        f"server_close() was not called exactly once by {how}",
        expected="1 call",
        observed=f"{_calls(ctx, 'server_close')} call(s)",
    )
    ctx.expect(
        srv.listening_fd() == -1 and _fd_target(fd) != target,
        "shutdown.fd_released",
        "the listening socket is still open after server_close()",
        expected=f"fd {fd} ({target}) closed",
        observed=f"fileno()={srv.listening_fd()}, fd {fd} → {_fd_target(fd)}",
    )
    refused = _refused(ctx, srv)
    ctx.expect(
        refused is None,
        "shutdown.refused",
        "a client reached the closed server",
        expected="ConnectionRefusedError",
        observed=refused or "",
    )


def _refused(ctx: Context, srv: ServerHandle) -> str | None:
    """None if a new client is refused; otherwise what happened instead."""
    try:
        if ctx.transport.is_stream:
            ctx.connect(srv, timeout=2.0)
            return "connected"
        ctx.datagram(srv, timeout=1.0).exchange(b"anyone?")
        return "got a reply"
    except ConnectionRefusedError:
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


@scenario(
    "shutdown.bind.deferred",
    title="bind_and_activate=False binds nothing until server_bind()/server_activate()",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync",),
)
def deferred_bind(ctx: Context) -> None:
    """A server built with bind_and_activate=False has an unbound socket; server_bind()
    binds it and stores the real address (the chosen port for port 0) in
    server_address; after server_activate() it serves."""
    srv = ctx.server(serve=False, bind_and_activate=False)
    ctx.expect(
        not ctx.events("server_bind")
        and not ctx.events("server_activate")
        and not _bound(srv.server.socket),
        "shutdown.deferred_bind",
        "the constructor bound or activated the socket despite bind_and_activate=False",
        expected="an unbound socket, no server_bind()/server_activate()",
        observed=f"getsockname()={srv.server.socket.getsockname()!r}",
    )
    ctx.call(srv.server.server_bind, "server_bind()")
    address, actual = srv.server.server_address, srv.server.socket.getsockname()
    ctx.expect(
        _bound(srv.server.socket) and address == actual,
        "shutdown.server_address",
        "server_address does not hold the address actually bound",
        expected=f"{actual!r} (non-zero port)",
        observed=repr(address),
    )
    ctx.call(srv.server.server_activate, "server_activate()")
    srv.serve()
    _echo_once(ctx, srv, "after server_bind() and server_activate()")


def _bound(sock: socket.socket) -> bool:
    name = sock.getsockname()
    return bool(name[1]) if isinstance(name, tuple) else bool(name)


@scenario(
    "shutdown.bind.address_in_use",
    title="A constructor that cannot bind raises OSError and closes its socket",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync",),
)
def address_in_use(ctx: Context) -> None:
    """Constructing a server on an address another server holds raises OSError, and the
    new server's socket is closed before the exception propagates."""
    first = ctx.server(serve=False)
    made: list[Any] = []
    base: Any = ctx.server_class()

    def server_bind(self: Any) -> None:
        made.append(self)
        base.server_bind(self)

    probe = type("Probe", (base,), {"server_bind": server_bind})
    try:
        probe(first.server.server_address, first.server.RequestHandlerClass).server_close()
        raised = "nothing"
    except OSError:
        raised = ""
    ctx.expect(
        not raised,
        "shutdown.bind_error",
        "binding a taken address did not raise",
        expected="OSError (address in use)",
        observed=raised,
    )
    leaked = [m.socket for m in made if m.socket.fileno() != -1]
    ctx.expect(
        not leaked,
        "shutdown.no_fd_leak",
        "the failed constructor left its socket open",
        expected="socket closed (fileno() == -1)",
        observed=repr(leaked[:1]),
    )
    for sock in leaked:
        sock.close()


def _reply_then_close(handler: Any) -> None:
    """Answer one line and return: the server closes first, so its side enters TIME_WAIT."""
    handler.wfile.write(handler.rfile.readline())


@scenario(
    "shutdown.reuse_address",
    title="allow_reuse_address lets a server restart on its port despite TIME_WAIT",
    transports=("tcp", "tcp6"),
    kinds=("sync",),
    params={"clients": [4]},
    checks=("lifecycle", "resources"),
)
def reuse_address(ctx: Context, clients: int) -> None:
    """A server with allow_reuse_address that closed connections itself (leaving them in
    TIME_WAIT) is closed, and a new one binds the same port at once and serves."""
    first = ctx.server(_reply_then_close, allow_reuse_address=True)
    scripts = [(Send(b"line\n"), RecvLine(), ExpectEOF()) for _ in range(clients)]
    checks.clients_ok(ctx, ctx.swarm(scripts, first, timeout=5.0))
    first.close()
    second = ctx.server(
        _reply_then_close, serve=False, bind_and_activate=False, allow_reuse_address=True
    )
    if _rebind(ctx, second, first.server.server_address):
        checks.clients_ok(ctx, ctx.swarm(scripts, second, timeout=5.0))


@scenario(
    "shutdown.reuse_port",
    title="allow_reuse_port lets two servers share a port",
    transports=("tcp", "udp"),
    kinds=("sync",),
    params={"clients": [16]},
    requires=("allow_reuse_port",),
    checks=("lifecycle", "resources"),
)
def reuse_port(ctx: Context, clients: int) -> None:
    """Two servers with allow_reuse_port bind the same address; together they serve
    every client."""
    options: dict[str, Any] = {"allow_reuse_port": True, "request_queue_size": clients}
    first = ctx.server(**options)
    second = ctx.server(serve=False, bind_and_activate=False, **options)
    if _rebind(ctx, second, first.server.server_address):
        _echo_once(ctx, first, "two servers on one port", clients)


@scenario(
    "shutdown.listen_backlog",
    title="request_queue_size clients complete their handshake while the server is busy",
    transports=("tcp", "unix_stream"),
    kinds=("sync",),
    params={"backlog": [8]},
)
def listen_backlog(ctx: Context, backlog: int) -> None:
    """request_queue_size is the listen() backlog: while a synchronous server is stuck
    in one handler, that many more clients still connect at once, and all are
    served afterwards.  (Linux admits backlog+1 and retries SYNs beyond it, so
    only this lower bound is asserted, not a refusal beyond it.)"""
    gate = ctx.gate()
    ctx.server(ctx.handler(gated(gate)), request_queue_size=backlog)
    busy = ctx.connect()
    ctx.wait_events("handle", 1)
    queued = []
    for _ in range(backlog):
        try:
            queued.append(ctx.connect(timeout=2.0))
        except OSError:
            break
    ctx.expect(
        len(queued) == backlog,
        "shutdown.listen_backlog",
        "fewer than request_queue_size clients could connect to a busy server",
        expected=f"{backlog} connected",
        observed=f"{len(queued)} connected",
    )
    gate.set()
    payloads = [ctx.payload(32) for _ in range(len(queued) + 1)]
    replies = []
    for index, (client, payload) in enumerate(zip([busy, *queued], payloads)):
        client.send(payload)
        client.shutdown_write()
        replies.append(ClientResult(index, True, client.recv_until_eof()))
    checks.echoed(ctx, replies, payloads)
