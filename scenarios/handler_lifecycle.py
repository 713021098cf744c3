"""Clients each make one request while the handler may raise in one of its hooks.

Invariant: per request the handler is constructed once and runs ``setup`` →
``handle`` → ``finish`` exactly once each, in order, in the thread or process
its server kind prescribes; ``finish`` runs even when ``handle`` raises; when
``setup`` raises, neither ``handle`` nor ``finish`` runs; every raised
``Exception`` reaches ``handle_error`` exactly once for that request, and the
server keeps serving.
"""

from harness import Context, RecvAll, Send, ShutdownWrite, checks, echo_script, raising, scenario

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
    ctx.server(handler, request_queue_size=clients)
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
