"""The listening socket as the server configured it: its accept queue and its reuse options.

Clients connect to a server that never accepts, until the kernel stops admitting
them; the same is done to a plain socket listening with the expected backlog, so
the kernel's own rule (Linux admits backlog + 1) cancels out.  The socket options
are read back from ``server.socket``.

Invariant: ``server_activate()`` listens with ``request_queue_size`` (documented
default 5), so the server's accept queue holds exactly as many connections as a
socket listening with that backlog.  ``SO_REUSEADDR`` is set on the listening
socket exactly when ``allow_reuse_address`` is true (documented default False),
and ``SO_REUSEPORT`` exactly when ``allow_reuse_port`` is (3.11+; default False).
"""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import Any

from harness import Context, scenario
from harness.support import Background

#: The documented default of ``request_queue_size`` ("usually 5").
DEFAULT_QUEUE = 5
#: How long a TCP connect may take to complete before it counts as not admitted.  On
#: loopback an admitted handshake completes inside connect(); a refused one waits
#: for the SYN retry, a second later.
ADMIT_WAIT = 0.3
#: Never open more than this many clients looking for the end of a queue.
MOST = 40


def _admitted(family: int, address: Any, wait: float) -> tuple[int, list[socket.socket]]:
    """How many non-blocking connects to ``address`` complete before one does not."""
    clients: list[socket.socket] = []
    admitted = 0
    for _ in range(MOST):
        sock = socket.socket(family, socket.SOCK_STREAM)
        clients.append(sock)
        sock.setblocking(False)
        err = sock.connect_ex(address)
        if err == errno.EINPROGRESS:
            _r, writable, _x = select.select([], [sock], [], wait)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if writable else -1
        if err != 0:
            break
        admitted += 1
    return admitted, clients


def _plain_capacity(ctx: Context, backlog: int, wait: float) -> int:
    """How many connections a plain socket listening with ``backlog`` admits."""
    family = socket.AF_UNIX if ctx.transport.name == "unix_stream" else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    path = ctx.path("plain-listener.sock") if family == socket.AF_UNIX else None
    clients: list[socket.socket] = []
    try:
        listener.bind(path if path else ("127.0.0.1", 0))
        listener.listen(backlog)
        admitted, clients = _admitted(family, listener.getsockname(), wait)
        return admitted
    finally:
        for sock in clients:
            sock.close()
        listener.close()
        if path and os.path.exists(path):
            os.unlink(path)


@scenario(
    "listening.accept_queue",
    title="The accept queue holds what listen(request_queue_size) holds (default 5)",
    transports=("tcp", "unix_stream"),
    kinds=("sync",),
    params={"request_queue_size": [None, 2]},
    checks=("resources",),
)
def accept_queue(ctx: Context, request_queue_size: int | None) -> None:
    """A server that accepts nothing admits exactly as many connections as a plain
    socket listening with request_queue_size (None: the documented default, 5)."""
    attrs = {} if request_queue_size is None else {"request_queue_size": request_queue_size}
    backlog = DEFAULT_QUEUE if request_queue_size is None else request_queue_size
    srv = ctx.server(serve=False, **attrs)
    wait = ADMIT_WAIT * ctx.scale
    family = srv.server.socket.family
    plain = Background(lambda: _plain_capacity(ctx, backlog, wait), "plain listener")
    admitted, clients = _admitted(family, srv.server.socket.getsockname(), wait)
    for sock in clients:
        sock.close()
    expected = plain.finish(ctx.timeout(5.0))
    ctx.note("admitted", {"server": admitted, f"listen({backlog})": expected})
    ctx.expect(
        admitted == expected,
        "listening.accept_queue",
        "the server's accept queue is not the size listen(request_queue_size) gives",
        expected=f"{expected} connections admitted, as by listen({backlog})",
        observed=f"{admitted} admitted",
    )


def _flag(sock: socket.socket, option: str) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, getattr(socket, option)))


@scenario(
    "listening.reuse_options",
    title="SO_REUSEADDR / SO_REUSEPORT follow allow_reuse_address / allow_reuse_port",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync",),
    # False is the default's own path (None); an inverted test shows on None and True.
    params={"knob": ["allow_reuse_address", "allow_reuse_port"], "value": [None, True]},
    requires=("server_bind",),  # server_bind() sets the options before bind()
    checks=("resources",),
)
def reuse_options(ctx: Context, knob: str, value: bool | None) -> None:
    """The listening socket has SO_REUSEADDR (SO_REUSEPORT) set exactly when
    allow_reuse_address (allow_reuse_port) is true: set for True, clear with the
    documented default (None: not overridden), which is False."""
    option = {"allow_reuse_address": "SO_REUSEADDR", "allow_reuse_port": "SO_REUSEPORT"}[knob]
    if knob == "allow_reuse_port":
        ctx.require("allow_reuse_port")
        if ctx.transport.name == "unix_stream":
            return  # meaningless for a path, and CPython releases differ on setting it there
    if not hasattr(socket, option):
        return
    srv = ctx.server(serve=False, **({} if value is None else {knob: value}))
    seen = _flag(srv.server.socket, option)
    want = bool(value)
    ctx.expect(
        seen == want,
        "listening.reuse_options",
        f"{option} on the listening socket does not follow {knob}={value}",
        expected=f"{option} {'set' if want else 'clear'}",
        observed=f"{option} {'set' if seen else 'clear'}",
    )
