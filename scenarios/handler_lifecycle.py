"""Clients each make one request while the handler may raise in one of its hooks.

Invariant: per request a new handler instance is constructed, with ``request``,
``client_address`` (the client's own address) and ``server`` set before ``setup``
runs, and it runs ``setup`` → ``handle`` → ``finish`` exactly once each, in order,
in the thread or process its server kind prescribes; ``finish`` runs even when
``handle`` raises; when ``setup`` raises, neither ``handle`` nor ``finish`` runs;
every raised ``Exception`` reaches ``handle_error`` exactly once for that request,
and the server keeps serving later clients.
"""

from __future__ import annotations

import json
from typing import Any

from harness import (
    ClientResult,
    Context,
    RecvAll,
    Send,
    ShutdownWrite,
    checks,
    echo_script,
    raising,
    scenario,
)
from harness.support import Behaviour, fail_then_serve, tagged_handler

FAULTS = ("none", "setup", "handle", "finish")


@scenario(
    "lifecycle.handler.order",
    title="Handler hooks run once each, in order, even when one raises",
    params={"fault": FAULTS, "clients": [20]},
    profile="smoke",
    checks=("lifecycle", "concurrency", "resources"),
)
def handler_order(ctx: Context, fault: str, clients: int) -> None:
    """setup → handle → finish once each per request; finish after a raising handle;
    handle_error once per raised exception; the server goes on serving."""
    hook = raising(f"injected in {fault}")
    handler = ctx.handler(
        handle=hook if fault == "handle" else None,
        after_setup=hook if fault == "setup" else None,
        before_finish=hook if fault == "finish" else None,
    )
    ctx.server(handler, poll_interval=0.01, request_queue_size=clients)
    payloads = [ctx.payload(32) for _ in range(clients)]
    replies = fault in ("none", "finish") if ctx.transport.is_stream else fault == "none"
    if replies:
        results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
        checks.echoed(ctx, results, payloads)
    elif ctx.transport.is_stream:
        # Send nothing: a server closing with unread input would answer with RST.
        results = ctx.swarm([(ShutdownWrite(), RecvAll()) for _ in payloads])
        checks.echoed(ctx, results, [b""] * clients)
    else:
        ctx.swarm([(Send(p),) for p in payloads])
    ctx.expect(
        ctx.wait_events("finish_request", clients),
        "lifecycle.served",
        "not every request reached finish_request by the deadline",
        expected=f"{clients} finish_request calls",
        observed=f"{len(ctx.events('finish_request')) // 2}",
    )


# --- handler attributes and instances -------------------------------------------

ATTRIBUTES = ("request", "client_address", "server")


def _probing_setup(base: type) -> Behaviour:
    """A ``setup`` that notes what the instance holds before the base ``setup`` runs."""

    def setup(handler: Any) -> None:
        handler.sockspec_reused = hasattr(handler, "sockspec_before_setup")
        handler.sockspec_before_setup = [a for a in ATTRIBUTES if a in vars(handler)]
        base.setup(handler)  # type: ignore[attr-defined]

    return setup


def _report(handler: Any) -> None:
    """Reply with what the handler saw, for the client to compare with its own view."""
    report = {
        "before_setup": handler.sockspec_before_setup,
        "reused": handler.sockspec_reused,
        "client_address": _norm(handler.client_address),
        "server_address": _norm(handler.server.server_address),
        "data": handler.rfile.read().decode(),
    }
    handler.wfile.write(json.dumps(report).encode())


def _norm(address: Any) -> Any:
    if isinstance(address, (tuple, list)):
        return list(address[:2])
    return address.decode() if isinstance(address, bytes) else address


@scenario(
    "lifecycle.handler.attributes",
    title="request, client_address and server are set before setup, on a fresh instance",
    params={"clients": [5]},
    checks=("lifecycle", "concurrency", "resources"),
)
def handler_attributes(ctx: Context, clients: int) -> None:
    """A new handler instance per request has request, client_address and server set
    before setup runs; client_address is the client's own address, server the server."""
    base = getattr(ctx.impl.module, ctx.transport.handler_base)
    server = ctx.server(ctx.handler(_report, setup=_probing_setup(base)), poll_interval=0.01)
    payloads = [f"client {i}".encode() for i in range(clients)]
    results = ctx.swarm([echo_script(p, ctx.transport.is_stream) for p in payloads])
    checks.clients_ok(ctx, results)
    for result in results:
        _check_report(ctx, result, payloads[result.index], server.endpoint.address)
    server.close()
    _check_instances(ctx)


def _check_report(ctx: Context, result: ClientResult, payload: bytes, address: Any) -> None:
    try:
        report = json.loads(result.received)
    except ValueError:
        return  # clients_ok has reported the failure
    want = {
        "before_setup": list(ATTRIBUTES),
        "reused": False,
        "client_address": _norm(result.local_address),
        "server_address": _norm(address),
        "data": payload.decode(),
    }
    wrong = {key: report.get(key) for key, value in want.items() if report.get(key) != value}
    ctx.expect(
        not wrong,
        "lifecycle.handler.attributes",
        f"client {result.index}: the handler's attributes were not what the client expects",
        expected=", ".join(f"{k}={want[k]!r}" for k in wrong),
        observed=", ".join(f"{k}={v!r}" for k, v in wrong.items()),
    )


def _check_instances(ctx: Context) -> None:
    """setup, handle and finish of a request run on the instance constructed for it."""
    for init in ctx.events("handler_init"):
        instance = init.detail.get("instance")
        hooks = [
            e
            for e in ctx.events(conn=init.conn)
            if e.name in ("setup", "handle", "finish") and e.phase == "call"
        ]
        others = sorted({e.name for e in hooks if e.detail.get("instance") != instance})
        ctx.expect(
            not others and init.conn is not None,
            "lifecycle.handler.instance",
            f"conn#{init.conn}: hooks ran on another instance than the one constructed",
            expected=f"setup, handle, finish on instance {instance!r}",
            observed=f"{', '.join(others)} on another instance",
            conn=init.conn,
        )


# --- setup errors ------------------------------------------------------------------


@scenario(
    "lifecycle.handler.setup_error",
    title="A raising setup is handled and the server serves the next client",
    transports=("tcp", "udp", "unix_stream"),
    params={"failures": [3]},
    checks=("lifecycle", "concurrency", "resources"),
)
def setup_error(ctx: Context, failures: int) -> None:
    """When setup raises, handle_error reports it (handle and finish do not run), the
    request is closed, and a client arriving afterwards is served normally."""
    fail_then_serve(ctx, tagged_handler("setup"), failures)
