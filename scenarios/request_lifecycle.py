"""Clients make requests to servers whose verify_request accepts all, none, or some of them.

Invariant: every request passes ``get_request → verify_request → process_request →
finish_request → handler → shutdown_request → close_request`` once each, in order (a
forking parent also closes its copy right after the fork); the handler runs inside
``finish_request`` and ``close_request`` inside ``shutdown_request``.  A request that
``verify_request`` rejects never reaches a handler, is still shut down and closed, and its
client sees EOF (stream) or gets no reply (datagram) — also when accepted and rejected
requests arrive together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from harness import (
    ALL,
    Context,
    ExpectEOF,
    RecvAll,
    RecvDatagram,
    Send,
    checks,
    echo_script,
    scenario,
)
from harness.checks import expect_silence, nesting

GREETING = b"hello from the handler\n"


def _greet(handler: Any) -> None:
    """Reply without reading: a handler that wrongly runs is visible to its client."""
    handler.wfile.write(GREETING)


def _refuse(server: Any, request: Any, client_address: Any) -> bool:
    return False


def _every_other() -> Callable[[Any, Any, Any], bool]:
    """A verify_request accepting the 1st, 3rd, 5th... request (it runs in the serving thread)."""
    turn = itertools.count()
    return lambda server, request, client_address: next(turn) % 2 == 0


def _by_tag(server: Any, request: Any, client_address: Any) -> bool:
    """A datagram verify_request: accept what starts with ``+``."""
    return bool(request[0].startswith(b"+"))


def _verdicts(ctx: Context) -> list[bool]:
    return [
        bool(e.detail.get("result")) for e in ctx.events("verify_request") if e.phase == "return"
    ]


@scenario(
    "lifecycle.request.order",
    title="Each request's hooks run once, in order, each inside the hook that calls it",
    transports=("tcp", "udp", "unix_stream", "unix_dgram"),
    params={"clients": [10]},
    profile="smoke",
)
def request_order(ctx: Context, clients: int) -> None:
    """get_request → verify_request → process_request → finish_request → handler →
    shutdown_request → close_request once each per request, with the handler inside
    finish_request and close_request inside shutdown_request."""
    server = ctx.server(poll_interval=0.01, request_queue_size=clients)
    payloads = [ctx.payload(64) for _ in range(clients)]
    results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
    checks.echoed(ctx, results, payloads)
    server.close()  # every handler has finished: the log is complete
    nesting(ctx)


@scenario(
    "lifecycle.request.rejected",
    title="A rejected request is shut down and closed without a handler",
    transports=("tcp", "udp", "unix_stream", "unix_dgram"),
    params={"clients": [5]},
)
def rejected(ctx: Context, clients: int) -> None:
    """When verify_request returns False no handler runs, shutdown_request and
    close_request still run, and the client sees EOF (stream) or no reply (datagram)."""
    ctx.server(ctx.handler(_greet), poll_interval=0.01, verify_request=_refuse)
    if ctx.transport.is_stream:
        checks.clients_ok(ctx, ctx.swarm([(ExpectEOF(),)] * clients, timeout=5.0))
        return
    client = ctx.datagram()
    for _ in range(clients):
        client.send(ctx.payload(16))
    ctx.expect(
        ctx.wait_events("close_request", clients, phase="return"),
        "lifecycle.request.rejected_closed",
        "not every rejected datagram request was closed",
        expected=f"{clients} close_request calls",
        observed=f"{len(ctx.events('close_request')) // 2}",
    )
    expect_silence(ctx, client, "lifecycle.request.rejected_silent")


@scenario(
    "lifecycle.request.mixed",
    title="Accepted and rejected requests together: each gets its own fate",
    transports=("tcp", "udp", "unix_stream"),
    kinds=ALL,
    params={"clients": [20]},
    checks=("lifecycle", "concurrency", "resources"),
)
def mixed(ctx: Context, clients: int) -> None:
    """Under concurrency, with verify_request accepting only some requests, every
    accepted client is served and every rejected one gets EOF (stream) / no handler."""
    stream = ctx.transport.is_stream
    verify = _every_other() if stream else _by_tag
    ctx.server(
        ctx.handler(_greet), poll_interval=0.01, request_queue_size=clients, verify_request=verify
    )
    tags = [b"+" if i % 2 == 0 else b"-" for i in range(clients)]
    scripts = (
        [(RecvAll(),)] * clients
        if stream
        else [(Send(t), RecvDatagram()) if t == b"+" else (Send(t),) for t in tags]
    )
    results = ctx.swarm(scripts)
    checks.clients_ok(ctx, results)
    ctx.wait_events("shutdown_request", clients)
    verdicts = _verdicts(ctx)
    served = sorted(r.received == GREETING for r in results)
    ctx.expect(
        sorted(verdicts) == served == sorted(t == b"+" for t in tags),
        "lifecycle.request.mixed_fates",
        "the clients served do not match the requests verify_request accepted",
        expected=f"{tags.count(b'+')} accepted and served, {tags.count(b'-')} rejected",
        observed=f"{sum(verdicts)} of {len(verdicts)} accepted, {sum(served)} served",
    )
