"""Clients make many requests in a row, or hold several open, while descriptors are counted.

Invariant: a server holds no descriptor per finished request — the count stays flat over
hundreds of sequential requests on every server kind — and a forking server's parent keeps
no copy of a request socket while its children handle them.  A Unix server's address is a
socket file on disk while it serves; ``server_close()`` closes the socket but (as CPython
does) leaves the file for the owner to remove.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from harness import ALL, STREAM_TRANSPORTS, Context, scenario
from harness.support import descriptor_count, socket_descriptors

UNIX = ("unix_stream", "unix_dgram")


def _requester(ctx: Context) -> Any:
    """A function making one complete echo request (a new connection each on a stream)."""
    if not ctx.transport.is_stream:
        client = ctx.datagram()
        return lambda payload: client.exchange(payload)

    def request(payload: bytes) -> bytes:
        with ctx.connect() as client:
            client.send(payload)
            client.shutdown_write()
            return client.recv_until_eof()

    return request


@scenario(
    "resources.fds.flat",
    title="Descriptors stay flat over many sequential requests",
    transports=("tcp", "unix_stream"),
    kinds=ALL,
    params={"requests": [200]},
    deadline=30.0,
)
def fds_flat(ctx: Context, requests: int) -> None:
    """After hundreds of sequential requests the server process has as many open
    descriptors as after the first few: nothing is kept per request."""
    ctx.server(poll_interval=0.01)
    request = _requester(ctx)
    closes = 2 if ctx.kind == "forking" else 1  # the forking parent closes its copy too
    warmup, payload = 5, ctx.payload(32)
    for _ in range(warmup):
        request(payload)
    ctx.wait_events("close_request", warmup * closes, phase="return")
    before = descriptor_count()
    replies = [request(payload) for _ in range(requests)]
    ctx.wait_events("close_request", (warmup + requests) * closes, phase="return")
    grown = descriptor_count() - before
    ctx.expect(
        replies.count(payload) == requests and grown <= 2,
        "resources.fds_flat",
        f"the process gained {grown} descriptor(s) over {requests} sequential requests",
        expected=f"{requests} echoes, at most 2 more descriptors",
        observed=f"{replies.count(payload)} echoes, {grown:+d} descriptors",
    )


@scenario(
    "resources.forking.parent_closes",
    title="A forking server's parent keeps no request sockets while children work",
    transports=STREAM_TRANSPORTS,
    kinds=("forking",),
    params={"clients": [6]},
)
def forking_parent_closes(ctx: Context, clients: int) -> None:
    """While every child is busy with its request, the parent holds no socket beyond
    its listening socket: it closed its copy of each request right after the fork."""
    ctx.server(poll_interval=0.01, request_queue_size=clients)
    before = socket_descriptors()
    held = [ctx.connect() for _ in range(clients)]  # children echo: they wait for data
    ctx.wait_events("handle", clients)
    ctx.wait_events("process_request", clients, phase="return")
    mine = {c.fileno() for c in held}
    kept = {fd: t for fd, t in socket_descriptors().items() if fd not in mine}
    kept = {fd: t for fd, t in kept.items() if before.get(fd) != t}
    ctx.expect(
        not kept,
        "resources.forking_parent_sockets",
        f"the parent holds {len(kept)} request socket(s) while its children handle them",
        expected="no socket descriptors beyond the listening socket and the clients'",
        observed=", ".join(f"fd {fd} → {t}" for fd, t in sorted(kept.items())[:10]),
    )
    for client in held:
        client.send(b"done")
        client.shutdown_write()
        ctx.expect(client.recv_until_eof() == b"done", "replies.echo", "a held client's echo")


def _is_socket_file(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


@scenario(
    "resources.unix.socket_file",
    title="A Unix server's address is a socket file while it serves",
    transports=UNIX,
    kinds=ALL,
    profile="smoke",
)
def unix_socket_file(ctx: Context) -> None:
    """While a Unix server serves, its server_address is a socket file on disk
    through which clients reach it."""
    server = ctx.server(poll_interval=0.01)
    path = server.endpoint.address
    ctx.expect(
        _is_socket_file(path),
        "resources.unix_socket_file",
        "the server's address is not a socket file while it serves",
        expected=f"{path} is a socket",
        observed="missing" if not os.path.exists(path) else "not a socket",
    )
    reply = _requester(ctx)(b"ping")
    ctx.expect(reply == b"ping", "replies.echo", "a client could not reach the socket file")


@scenario(
    "resources.unix.file_after_close",
    title="server_close() leaves a Unix socket file in place (as CPython does)",
    transports=UNIX,
    kinds=ALL,
    strictness="info",
)
def unix_file_after_close(ctx: Context) -> None:
    """server_close() closes a Unix server's socket but does not unlink its file:
    CPython leaves the path for the owner to remove (binding it again fails with
    EADDRINUSE until then).  Recorded for information; unlinking is not wrong."""
    server = ctx.server(serve=False)
    path = server.endpoint.address
    server.close()
    ctx.expect(
        server.listening_fd() == -1 and _is_socket_file(path),
        "resources.unix_file_kept",
        "server_close() did not leave the socket file as CPython does",
        expected=f"socket closed, {path} still on disk",
        observed=f"fd {server.listening_fd()}, file "
        + ("kept" if os.path.exists(path) else "removed"),
    )
