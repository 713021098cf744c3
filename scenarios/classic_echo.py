"""Many clients each hold a conversation of separate echo round trips with the tutorial echo server.

Invariant: a ``ThreadingTCPServer``-kind server whose handler is the classic
socketserver tutorial loop -- ``self.request.recv(1024)`` then
``self.request.send(data)`` until the client closes -- answers every message of
every concurrent client with exactly that message, and ends each conversation
(closing its side) once the client has closed its own.
"""

from __future__ import annotations

from typing import Any

from harness import Context, ExpectEOF, Recv, Send, ShutdownWrite, checks, param, scenario


def tutorial_echo(handler: Any) -> None:
    """The tutorial handler: echo what ``recv(1024)`` returns until the client closes."""
    while True:
        data = handler.request.recv(1024)
        if not data:
            break
        handler.request.send(data)


@scenario(
    "classic_echo.conversations",
    title="The tutorial echo handler on a threading server: many clients, many round trips",
    transports=("tcp", "tcp6", "unix_stream"),
    kinds=("threading",),
    params={"load": ["50x10", param("200x50", profile="full")]},
    checks=("lifecycle", "concurrency", "resources"),
    deadline=90.0,
)
def conversations(ctx: Context, load: str) -> None:
    """C concurrent clients (load ``CxM``) each send M messages one at a time, reading every
    echo before sending the next, then close: every reply is exactly its message, and the
    server closes each connection after the client's close."""
    clients, messages = (int(n) for n in load.split("x"))
    ctx.server(ctx.handler(tutorial_echo, base="BaseRequestHandler"), request_queue_size=clients)
    sizes = [[ctx.rng.randint(1, 1024) for _ in range(messages)] for _ in range(clients)]
    talks = [[ctx.payload(n) for n in talk] for talk in sizes]
    scripts = [
        (*(op for m in talk for op in (Send(m), Recv(len(m)))), ShutdownWrite(), ExpectEOF())
        for talk in talks
    ]
    results = ctx.swarm(scripts, timeout=60.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, [b"".join(talk) for talk in talks])
