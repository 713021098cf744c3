"""Servers run in the process environment real servers meet: high descriptor numbers, and
descriptors the process had before the server (inherited from its parent, or its own).

A long-running process (or one started by a supervisor that leaves descriptors
open) hands the server a listening socket numbered above ``FD_SETSIZE`` (1024),
where ``select()`` cannot watch it.  The case fills every lower descriptor with
placeholders, creates the server, frees the placeholders, and serves clients.

Invariant: a server whose listening socket has a descriptor above 1024 serves as
any other: ``serve_forever()`` and ``handle_request()`` wait on it with a selector
that has no such limit (``poll``), never dying with "filedescriptor out of range".
A server touches only the descriptors it opened: a pipe the process held before the
server was made still works after the server served (in threads or children) and
was closed.
"""

from __future__ import annotations

import os

from harness import Context, ServerHandle, Unsupported, checks, echo_script, scenario
from harness.support import Background

try:
    import resource
except ImportError:  # pragma: no cover - no rlimits off Unix
    resource = None  # type: ignore[assignment]

#: select()'s FD_SETSIZE on Linux: descriptors from here on are out of its range.
FD_SETSIZE = 1024


def _room_above(fd: int) -> None:
    """Raise the soft descriptor limit past ``fd`` (never lowered); Unsupported if it cannot."""
    if resource is None:
        raise Unsupported("host lacks rlimits: cannot reach high descriptor numbers")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = fd + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise Unsupported(f"host's descriptor limit ({hard}) is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


#: Tries at making the server while every low descriptor is taken: a thread of the
#: worker (a client watch reading /proc, a carried hang's teardown) may close one
#: between the filling and the server's socket(), which then gets that number.
FILL_ATTEMPTS = 5


def _server_above(ctx: Context) -> ServerHandle:
    """A server made (not serving) while every descriptor below FD_SETSIZE was taken."""
    placeholders: list[int] = []
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        while True:
            fd = os.dup(null)
            placeholders.append(fd)
            if fd >= FD_SETSIZE:
                break
        return ctx.server(serve=False, timeout=5.0)
    finally:
        for fd in placeholders:
            os.close(fd)
        os.close(null)


@scenario(
    "environment.high_descriptor",
    title="A listening socket numbered above 1024 (FD_SETSIZE) is served normally",
    transports=("tcp", "udp"),
    kinds=("sync",),
    params={"driver": ["serve_forever", "handle_request"], "clients": [3]},
    checks=("lifecycle", "concurrency", "resources"),
)
def high_descriptor(ctx: Context, driver: str, clients: int) -> None:
    """With every descriptor below 1024 taken when the server is made, its socket gets a
    number select() cannot watch; serve_forever() or handle_request() still serves every
    client (a poll-based selector), and the server does not die."""
    _room_above(FD_SETSIZE)
    for _attempt in range(FILL_ATTEMPTS):
        srv = _server_above(ctx)
        if srv.listening_fd() > FD_SETSIZE:
            break
        srv.close()  # another thread of the process closed a low descriptor meanwhile
    if driver == "serve_forever":
        srv.serve()
    ctx.note("listening_fd", srv.listening_fd())
    if not ctx.expect(
        srv.listening_fd() > FD_SETSIZE,
        "environment.high_descriptor_reached",
        "the case could not give the server a descriptor above FD_SETSIZE",
        expected=f"listening descriptor > {FD_SETSIZE}",
        observed=str(srv.listening_fd()),
    ):
        return
    payloads = [ctx.payload(32) for _ in range(clients)]
    scripts = [echo_script(p, ctx.transport.is_stream) for p in payloads]
    if driver == "serve_forever":
        results = ctx.swarm(scripts, timeout=10.0)
    else:
        run = Background(lambda: ctx.swarm(scripts, timeout=10.0), "clients")
        for _ in range(clients):
            ctx.call(srv.server.handle_request, "handle_request()", timeout=6.0)
        results = run.finish(ctx.timeout(10.0))
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, payloads)


@scenario(
    "environment.inherited_descriptor",
    title="Descriptors the process held before the server are left open and working",
    transports=("tcp",),
    params={"clients": [3]},
    checks=("lifecycle", "concurrency", "resources"),
)
def inherited_descriptor(ctx: Context, clients: int) -> None:
    """A pipe opened before the server was made (as one inherited from a parent would be)
    still carries data after the server served its clients and was closed."""
    read_end, write_end = os.pipe()
    try:
        srv = ctx.server()
        payloads = [ctx.payload(32) for _ in range(clients)]
        results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
        checks.clients_ok(ctx, results)
        checks.echoed(ctx, results, payloads)
        srv.close()
        try:
            os.write(write_end, b"still here")
            seen = os.read(read_end, 64)
        except OSError as exc:
            seen = f"{type(exc).__name__}: {exc}".encode()
        ctx.expect(
            seen == b"still here",
            "environment.inherited_descriptor",
            "a descriptor the process held before the server no longer works",
            expected="the pipe carries b'still here'",
            observed=repr(seen),
        )
    finally:
        for fd in (read_end, write_end):
            try:
                os.close(fd)
            except OSError:
                continue
