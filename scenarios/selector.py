"""One thread serves several servers of different transports through one selector,
calling ``handle_request()`` on whichever is ready, while their clients run.

Invariant: a server's ``fileno()`` is the descriptor of its socket, so servers can
be registered with a selector side by side; ``handle_request()`` on a server the
selector reports ready serves one of its requests without waiting on the others,
and every client of every server gets exactly its own reply.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from harness import Context, ServerHandle, checks, echo_script, scenario

MIXES = ("tcp+udp", "tcp+udp+unix_stream", "tcp6+udp6+unix_dgram+unix_stream")


def _register(ctx: Context, selector: selectors.BaseSelector, handle: ServerHandle) -> bool:
    """Register ``handle``'s server by the server object itself (through its fileno())."""
    try:
        fd = handle.server.fileno()
        selector.register(handle.server, selectors.EVENT_READ, handle)
    except (TypeError, ValueError, OSError) as exc:
        fd = f"{type(exc).__name__}: {exc}"
    return ctx.expect(
        fd == handle.listening_fd(),
        "selector.fileno",
        f"{handle.transport} server: fileno() is not its socket's descriptor",
        expected=f"{handle.listening_fd()} (server.socket.fileno())",
        observed=repr(fd),
    )


def _serve(ctx: Context, selector: selectors.BaseSelector, runs: Sequence[Future[Any]]) -> None:
    """handle_request() on each ready server until every swarm is over (or the deadline).

    Called in this very thread, as an application would: the servers' own ``timeout``
    bounds each call, and the case deadline bounds the loop.
    """
    deadline = time.monotonic() + ctx.timeout(15.0)
    while not all(run.done() for run in runs) and time.monotonic() < deadline:
        for key, _events in selector.select(timeout=0.05):
            key.data.server.handle_request()


@scenario(
    "selector.shared",
    title="Several servers of different transports served from one selector",
    # The transports come from ``mix``; the case's own transport only names the variant.
    transports=("tcp",),
    params={"mix": MIXES, "clients": [4]},
    checks=("lifecycle", "concurrency", "resources"),
)
def shared_selector(ctx: Context, mix: str, clients: int) -> None:
    """fileno() lets one thread multiplex servers of several transports with a selector:
    handle_request() on the ready one serves it, and every client gets its own echo."""
    servers = [ctx.server(serve=False, transport=t, timeout=5.0) for t in mix.split("+")]
    payloads = {h: [ctx.payload(ctx.rng.randint(1, 512)) for _ in range(clients)] for h in servers}
    with selectors.DefaultSelector() as selector:
        if not all([_register(ctx, selector, h) for h in servers]):
            return
        with ThreadPoolExecutor(len(servers), thread_name_prefix="sockspec-clients") as pool:
            runs = {
                h: pool.submit(
                    ctx.swarm, [echo_script(p, h.endpoint.is_stream) for p in payloads[h]], h, 10.0
                )
                for h in servers
            }
            _serve(ctx, selector, list(runs.values()))
    for h, run in runs.items():
        checks.clients_ok(ctx, run.result())
        checks.echoed(ctx, run.result(), payloads[h])
