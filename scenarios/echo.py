"""Many clients send seeded random payloads at once and read back the echo.

Invariant: every client gets exactly its own bytes back — nothing lost, nothing
from another client — on every transport and server kind, and every request
passes through the full lifecycle once.
"""

from harness import Context, checks, echo_script, param, scenario


@scenario(
    "echo.concurrent",
    title="Concurrent echo: every client gets exactly its own bytes",
    params={"clients": [100, param(1000, profile="full")]},
    profile="smoke",
    checks=("lifecycle", "resources"),
    deadline=30.0,
)
def concurrent_echo(ctx: Context, clients: int) -> None:
    """Every one of N concurrent clients receives exactly the bytes it sent."""
    ctx.server(request_queue_size=clients)
    payloads = [ctx.payload(ctx.rng.randint(1, 512)) for _ in range(clients)]
    stream = ctx.transport.is_stream
    results = ctx.swarm([echo_script(p, stream) for p in payloads])
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, payloads)
