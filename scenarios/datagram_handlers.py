"""Datagram clients send packets of many sizes, alone and many at once, from UDP
ports and bound Unix paths, and read the replies.

Invariant: ``rfile`` holds exactly the datagram received, cut to the server's
``max_packet_size``; ``wfile`` is new for every request, and ``finish()`` sends
what was written to it as one datagram to the request's ``client_address``, which
is the sender's address (a Unix client's bound path) — so every client gets its
own reply, byte-exact, and never data meant for another.
"""

from __future__ import annotations

import json
from typing import Any

from harness import Context, RecvDatagram, Send, checks, echo_script, scenario

DATAGRAMS = ("udp", "udp6", "unix_dgram")
FULL_CHECKS = ("lifecycle", "concurrency", "resources")
#: ``UDPServer.max_packet_size`` as every CPython since 2.x defines it.
DEFAULT_MAX_PACKET = 8192


@scenario(
    "datagram.sizes",
    title="Datagrams echo byte-exact up to max_packet_size and are cut beyond it",
    transports=DATAGRAMS,
    params={"max_packet_size": [None, 512]},
    checks=FULL_CHECKS,
)
def sizes(ctx: Context, max_packet_size: int | None) -> None:
    """Datagrams of 0, 1, 1472 and max_packet_size bytes come back byte-exact; a longer
    one reaches the handler as its first max_packet_size bytes (None: the class's default,
    which must be CPython's 8192: 8192 bytes arrive whole, 8193 are cut)."""
    attrs: dict[str, Any] = {} if max_packet_size is None else {"max_packet_size": max_packet_size}
    ctx.server(**attrs)
    limit = DEFAULT_MAX_PACKET if max_packet_size is None else max_packet_size
    lengths = sorted({0, 1, 1472, limit - 1, limit, limit + 1, limit + 2000})
    payloads = [ctx.payload(n) for n in lengths]
    results = ctx.swarm([echo_script(p, stream=False) for p in payloads], timeout=5.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, [p[:limit] for p in payloads])


def _plain(address: Any) -> Any:
    """An address as JSON sees it: a path string, or ``[host, port]``."""
    if isinstance(address, bytes):
        return address.decode()
    return address if isinstance(address, str) else [address[0], address[1]]


@scenario(
    "datagram.client_address",
    title="client_address is the sender's address and the reply goes there",
    transports=DATAGRAMS,
    params={"clients": [6]},
    checks=FULL_CHECKS,
)
def client_address(ctx: Context, clients: int) -> None:
    """The handler's client_address is the sending socket's own address (a Unix client's
    bound path), and the reply written to wfile reaches exactly that socket."""

    def handle(h: Any) -> None:
        h.wfile.write(json.dumps(_plain(h.client_address)).encode())

    ctx.server(handle)
    results = ctx.swarm([(Send(b"%d" % i), RecvDatagram()) for i in range(clients)], timeout=5.0)
    checks.clients_ok(ctx, results)
    for r in results:
        seen = json.loads(r.received) if r.received else None
        ctx.expect(
            seen == _plain(r.local_address),
            "datagram.client_address",
            f"client {r.index}: the handler saw another client_address",
            expected=repr(_plain(r.local_address)),
            observed=repr(seen) if r.ok else f"no reply ({r.error})",
        )


@scenario(
    "datagram.isolation",
    title="Each datagram request has its own wfile: no client gets another's data",
    transports=DATAGRAMS,
    params={"clients": [16], "rounds": [2]},
    checks=FULL_CHECKS,
)
def isolation(ctx: Context, clients: int, rounds: int) -> None:
    """Many clients at once, several requests each, distinct payloads: every reply is
    exactly that request's datagram, nothing left over from another request or client."""
    ctx.server(request_queue_size=clients)
    scripts = [
        tuple(
            op
            for _ in range(rounds)
            for op in (Send(ctx.payload(ctx.rng.randint(1, 256))), RecvDatagram())
        )
        for _ in range(clients)
    ]
    results = ctx.swarm(scripts, timeout=10.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, checks.scripts_expected(scripts))
