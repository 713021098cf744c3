"""Crafted packets on loopback: SYNs never completed, an RST injected mid-request, UDP
datagrams from spoofed 127/8 sources, IP-fragmented and zero-length datagrams.

Invariant: half-open connections (many SYNs never completed) do not stop the server
from serving other clients; an RST injected into a connection mid-request ends that
request only (its handler sees the reset, ``handle_error`` reports it) and the server
goes on serving; a datagram's reply goes to the datagram's own source address, for
any source on 127.0.0.0/8; a datagram that arrives in IP fragments, in order or
reversed, is answered as one; a zero-length datagram is answered too.  Packets go
to 127.0.0.1 or ::1 only; cases are ``unsupported`` without raw sockets (root or
CAP_NET_RAW), libpcap or, for crafted TCP, nftables.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator, Sequence

from harness import (
    Context,
    ServerHandle,
    Unsupported,
    checks,
    echo_lines,
    echo_script,
    param,
    scenario,
)
from harness.packets import (
    RawSender,
    Segment,
    capture_servers,
    drop_kernel_resets,
    fragments,
    require_firewall,
    require_raw_packets,
    tcp_segment,
    udp_datagram,
)

TCP = ("tcp", "tcp6")
UDP = ("udp", "udp6")
#: A datagram this long goes out in three or four fragments of 1,000 bytes.
FRAGMENTED = 3000
#: Crafted datagrams in flight at once (see ``_exchange``).
WINDOW = 32
#: Crafted SYNs come from ports below Linux's default ephemeral range (32768-60999).
CRAFTED_PORTS = range(20000, 32768)


def _address(server: ServerHandle) -> tuple[str, int]:
    host, port = server.endpoint.address
    return str(host), int(port)


@scenario(
    "packets.tcp.half_open",
    title="Many half-open connections (SYN only) do not stop a server from serving",
    transports=TCP,
    kinds=("sync", "threading"),
    params={"syns": [64, param(1000, profile="full")], "clients": [8]},
    deadline=30.0,
)
def half_open(ctx: Context, syns: int, clients: int) -> None:
    """After many crafted SYNs that are never completed (the kernel's RSTs for them
    held back by a firewall rule), other clients still connect and are served."""
    require_raw_packets(ctx)
    require_firewall()
    _require_syncookies(syns, backlog=clients)
    server = ctx.server(request_queue_size=clients)
    host, port = _address(server)
    sports = ctx.rng.sample(CRAFTED_PORTS, syns)
    crafted = set(sports)
    segments = [tcp_segment((host, p), (host, port), "S", ctx.rng.getrandbits(32)) for p in sports]
    payloads = [ctx.payload(64) for _ in range(clients)]
    with drop_kernel_resets(port, sports), capture_servers(ctx, server) as cap, RawSender() as raw:
        raw.send(segments)
        answered = cap.wait_for(lambda s: _synacks(s, crafted) >= syns, ctx.timeout(5.0))
        results = ctx.swarm([echo_script(p, True) for p in payloads], timeout=10.0)
        resets = [s for s in cap.segments() if s.has("R") and s.sport in crafted]
    ctx.expect(answered, "packets.syn_answered", "the crafted SYNs were not all answered")
    ctx.expect(not resets, "packets.firewall", "RSTs escaped the rule", observed=str(resets))
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, payloads)


def _require_syncookies(syns: int, backlog: int) -> None:
    """Beyond the listen backlog only SYN cookies answer SYNs: without them no server can pass."""
    path = "/proc/sys/net/ipv4/tcp_syncookies"
    with contextlib.suppress(OSError), open(path) as f:
        if f.read().strip() == "0" and syns > backlog:
            raise Unsupported(f"{path} is 0: {syns} half-open SYNs fill a backlog of {backlog}")


def _synacks(segments: Sequence[Segment], ports: set[int]) -> int:
    return len({s.dport for s in segments if s.has("S") and s.has("A") and s.dport in ports})


@scenario(
    "packets.tcp.injected_rst",
    title="An RST injected mid-request does not stop the server",
    transports=TCP,
    params={"clients": [4]},
)
def injected_rst(ctx: Context, clients: int) -> None:
    """A client sends half a line; an RST crafted with the next sequence number (learnt
    by sniffing) resets its connection: the handler sees the reset, the request is
    shut down and closed, and later clients are served."""
    require_raw_packets(ctx)
    server = ctx.server(ctx.handler(echo_lines))
    with capture_servers(ctx, server) as cap, RawSender() as raw:
        victim = ctx.connect()
        victim.send(b"half a request, no newline")
        local = tuple(victim.local_address)
        if not cap.wait_for(lambda segs: bool(_data_from(segs, local)), ctx.timeout(5.0)):
            ctx.fail("packets.sniffed", "the victim's data segment was never captured")
            return
        last = _data_from(cap.segments(), local)[-1]
        ctx.wait_events("handle", 1)
        raw.send(tcp_segment(local, _address(server), "R", last.seq + last.length))
        ctx.wait_events("shutdown_request", 1)
    payloads = [ctx.payload(32) + b"\n" for _ in range(clients)]
    results = ctx.swarm([echo_script(p, True) for p in payloads], timeout=5.0)
    checks.echoed(ctx, results, payloads)
    raised = [e for e in ctx.events("handle") if e.phase == "raise"]
    ctx.expect(bool(raised), "packets.rst_seen", "the handler did not see the reset")


def _data_from(segments: Sequence[Segment], local: tuple[object, ...]) -> list[Segment]:
    return [s for s in segments if (s.src, s.sport) == local and s.length]


@contextlib.contextmanager
def _listeners(addresses: Sequence[str], family: int) -> Iterator[list[socket.socket]]:
    """UDP sockets bound to ``addresses`` (ephemeral ports): crafted datagrams' sources."""
    socks: list[socket.socket] = []
    try:
        for address in addresses:
            socks.append(socket.socket(family, socket.SOCK_DGRAM))
            socks[-1].bind((address, 0))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _source(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


def _replies(socks: Sequence[socket.socket], timeout: float) -> list[list[tuple[bytes, object]]]:
    """What each socket received (data, sender) until each got one reply or ``timeout``."""
    got: list[list[tuple[bytes, object]]] = [[] for _ in socks]
    index = {sock.fileno(): i for i, sock in enumerate(socks)}
    deadline = time.monotonic() + timeout
    while True:
        waiting = [s for s, g in zip(socks, got) if not g]
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            return got
        for sock in select.select(waiting, [], [], left)[0]:
            data, sender = sock.recvfrom(65536)
            got[index[sock.fileno()]].append((data, tuple(sender[:2])))


def _exchange(
    raw: RawSender, socks: Sequence[socket.socket], datagrams: Sequence[object], timeout: float
) -> list[list[tuple[bytes, object]]]:
    """Send ``datagrams[i]`` (from ``socks[i]``) a window at a time, collecting replies
    (all within ``timeout``).

    UDP has no flow control: a burst larger than the server's receive buffer
    would lose datagrams whatever the server does, so at most ``WINDOW`` are
    in flight.
    """
    replies: list[list[tuple[bytes, object]]] = []
    end = time.monotonic() + timeout
    for start in range(0, len(datagrams), WINDOW):
        raw.send(list(datagrams[start : start + WINDOW]))
        replies += _replies(socks[start : start + WINDOW], end - time.monotonic())
    return replies


@scenario(
    "packets.udp.spoofed_sources",
    title="Replies go to each datagram's own source, for any 127/8 source address",
    transports=("udp",),
    params={"sources": [49, param(254, profile="full")]},
)
def spoofed_sources(ctx: Context, sources: int) -> None:
    """Datagrams crafted from 127.0.0.2, 127.0.0.3, ... (random ports) are each answered
    at their own source address and port, with their own payload."""
    require_raw_packets(ctx)
    dst = _address(ctx.server())
    addresses = [f"127.0.0.{k}" for k in range(2, 2 + sources)]
    payloads = [ctx.payload(ctx.rng.randint(1, 256)) for _ in addresses]
    with _listeners(addresses, socket.AF_INET) as socks, RawSender() as raw:
        datagrams = [
            udp_datagram(_source(s), dst, p, ip_id=ctx.rng.getrandbits(16))
            for s, p in zip(socks, payloads)
        ]
        replies = _exchange(raw, socks, datagrams, ctx.timeout(5.0))
    wrong = [(addresses[i], got) for i, got in enumerate(replies) if got != [(payloads[i], dst)]]
    ctx.expect(
        not wrong,
        "packets.reply_address",
        f"{len(wrong)} of {sources} spoofed sources did not get exactly their reply",
        expected=f"each source gets its own payload back from {dst}",
        observed=repr(wrong[:5])[:2000],
    )


@scenario(
    "packets.udp.shapes",
    title="Fragmented (in order, reversed) and zero-length datagrams are answered",
    transports=UDP,
    params={"shape": ["zero_length", "fragments", "fragments_reversed"]},
)
def shapes(ctx: Context, shape: str) -> None:
    """A crafted datagram — empty, or 3,000 bytes in IP fragments sent in order or
    reversed — is reassembled by the kernel and answered as one datagram."""
    require_raw_packets(ctx)
    dst = _address(ctx.server())
    payload = b"" if shape == "zero_length" else ctx.payload(FRAGMENTED)
    ident = ctx.rng.getrandbits(16)
    with _listeners([dst[0]], ctx.transport.family) as socks, RawSender() as raw:
        datagram = udp_datagram(_source(socks[0]), dst, payload, ip_id=ident)
        packets = [datagram] if shape == "zero_length" else fragments(datagram, 1000, ident)
        raw.send(packets[::-1] if shape == "fragments_reversed" else packets)
        replies = _replies(socks, ctx.timeout(5.0))
    ctx.expect(
        replies[0] == [(payload, dst)],
        "packets.answered",
        f"the {shape} datagram ({len(payload)} bytes, {len(packets)} packet(s)) was not echoed",
        expected=f"{len(payload)} bytes back from {dst}",
        observed=repr([(len(d), a) for d, a in replies[0]]),
    )
