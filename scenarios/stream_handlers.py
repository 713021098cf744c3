"""Stream clients talk to handlers through ``rfile``/``wfile``: lines, binary frames,
huge replies read slowly, buffered output, half-closes, resets and idle clients.

Invariant: ``rfile`` yields exactly the bytes the client sent, and EOF (for good)
after its half-close; ``wfile.write`` sends every byte it is given however slowly
the client reads; with ``wbufsize > 0`` whatever was written is flushed before the
connection is shut down; ``disable_nagle_algorithm`` sets ``TCP_NODELAY``;
``timeout`` bounds a blocked read; the client sees EOF when its request ends even
if the handler left a file object open on the connection; a client that resets
mid-request does not stop the server, and its request is still shut down and closed;
when it resets before a buffered reply is flushed, ``finish()`` still closes ``wfile``.
``wfile`` is a writable binary file (``writable()`` is true) and ``rfile`` a readable
one, whatever ``wbufsize``; a handler may close ``wfile`` itself once its reply is
written, and ``finish()`` then leaves it alone (no error, no ``handle_error``).
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from harness import (
    Context,
    ExpectEOF,
    Pause,
    Recv,
    RecvAll,
    RecvLine,
    Reset,
    Send,
    ShutdownWrite,
    checks,
    echo_lines,
    scenario,
)

#: The handler code does not depend on the address family: tcp6 only where it might (nodelay).
STREAMS = ("tcp", "unix_stream")
FULL_CHECKS = ("lifecycle", "concurrency", "resources")


def _line(ctx: Context, longest: int) -> bytes:
    """Seeded random bytes (NUL, CR and all) with no newline inside."""
    return ctx.payload(ctx.rng.randint(0, longest)).replace(b"\n", b"\r")


@scenario(
    "stream.lines",
    title="rfile.readline / wfile.write echo lines intact and in order",
    transports=STREAMS,
    params={"clients": [8]},
    checks=FULL_CHECKS,
)
def lines(ctx: Context, clients: int) -> None:
    """Every line comes back intact and in order, a last line without newline at EOF;
    with the default unbuffered wfile each reply arrives before the next line is sent
    (odd clients wait for it, even ones send all their lines at once)."""
    ctx.server(ctx.handler(echo_lines), request_queue_size=clients)
    scripts = []
    for i in range(clients):
        body = [_line(ctx, 200) + b"\n" for _ in range(ctx.rng.randint(1, 12))]
        tail = (Send(_line(ctx, 50)), ShutdownWrite(), RecvAll())
        if i % 2:
            # An empty line first: its 1-byte reply is the write a buffer of any size
            # (wbufsize off by one) would keep back while this client waits for it.
            body.insert(0, b"\n")
            scripts.append((*[op for one in body for op in (Send(one), RecvLine())], *tail))
        else:
            scripts.append((Send(b"".join(body)), *tail))
    results = ctx.swarm(scripts, timeout=5.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, checks.scripts_expected(scripts))


@scenario(
    "stream.binary_frames",
    title="rfile.read(n) returns exactly n bytes of binary data, NULs included",
    transports=STREAMS,
    params={"sizes": [(0, 1, 256, 70_000, 1 << 20)]},
    checks=FULL_CHECKS,
)
def binary_frames(ctx: Context, sizes: tuple[int, ...]) -> None:
    """A length-prefixed frame sent in pieces is read with rfile.read(n) and written back
    with wfile.write byte-exact: NUL bytes and every other byte value survive."""

    def handle(h: Any) -> None:
        size = int.from_bytes(h.rfile.read(8), "big")
        h.wfile.write(h.rfile.read(size))

    ctx.server(ctx.handler(handle), request_queue_size=len(sizes))
    frames = [(b"\0\0\0" + bytes(range(256)) + ctx.payload(n))[:n] for n in sizes]
    scripts = [
        (
            Send(len(f).to_bytes(8, "big") + f[:1]),
            Pause(0.01),
            Send(f[1:]),
            Recv(len(f)),
            ExpectEOF(),
        )
        for f in frames
    ]
    results = ctx.swarm(scripts, timeout=10.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, frames)


@scenario(
    "stream.large_reply",
    title="wfile.write sends all of a multi-megabyte reply to a slow reader",
    transports=("tcp", "unix_stream"),
    params={"size": [8 << 20], "timeout": [None, 10.0], "clients": [1]},
    checks=FULL_CHECKS,
    deadline=40.0,
)
def large_reply(ctx: Context, size: int, timeout: float | None, clients: int) -> None:
    """One wfile.write() of a multi-megabyte reply delivers every byte to a client that
    starts reading late and reads in small chunks, with or without a socket timeout."""
    replies = [ctx.payload(size) for _ in range(clients)]

    def handle(h: Any) -> None:
        h.wfile.write(replies[int(h.rfile.readline())])

    ctx.server(ctx.handler(handle, timeout=timeout))
    chunk = 256 << 10
    slow = [op for _ in range(size // chunk) for op in (Recv(chunk), Pause(0.001))]
    scripts = [
        (Send(b"%d\n" % i), ShutdownWrite(), Pause(0.05), *slow, Recv(size % chunk), ExpectEOF())
        for i in range(clients)
    ]
    results = ctx.swarm(scripts, timeout=25.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, replies)


@scenario(
    "stream.buffered_flush",
    title="Buffered wfile output is flushed before the connection is shut down",
    transports=STREAMS,
    params={"wbufsize": [1 << 16]},
    checks=FULL_CHECKS,
)
def buffered_flush(ctx: Context, wbufsize: int) -> None:
    """With wbufsize > 0 the client receives everything the handler wrote without ever
    calling flush(): finish() flushes before the server shuts the connection down."""
    kept: list[Any] = []  # handlers stay referenced: garbage collection cannot flush for them
    sizes = (1, 1000, wbufsize - 1, wbufsize + 1, 3 * wbufsize)
    replies = [ctx.payload(n) for n in sizes]

    def handle(h: Any) -> None:
        kept.append(h)
        reply = replies[int(h.rfile.readline())]
        for start in range(0, len(reply), 1000):
            h.wfile.write(reply[start : start + 1000])

    ctx.server(ctx.handler(handle, wbufsize=wbufsize), request_queue_size=len(sizes))
    results = ctx.swarm([(Send(b"%d\n" % i), RecvAll()) for i in range(len(sizes))])
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, replies)


@scenario(
    "stream.nodelay",
    title="disable_nagle_algorithm sets TCP_NODELAY on the request socket",
    transports=("tcp", "tcp6"),
    params={"disable": [True, False]},
    checks=FULL_CHECKS,
)
def nodelay(ctx: Context, disable: bool) -> None:
    """Inside handle(), TCP_NODELAY on h.request is set exactly when the handler's
    disable_nagle_algorithm is true."""

    def handle(h: Any) -> None:
        flag = h.request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        h.wfile.write(b"%d" % bool(flag))

    ctx.server(ctx.handler(handle, disable_nagle_algorithm=disable))
    results = ctx.swarm([(RecvAll(),)] * 2)
    checks.clients_ok(ctx, results)
    seen = sorted({r.received for r in results})
    ctx.expect(
        seen == [b"%d" % disable],
        "stream.nodelay",
        "TCP_NODELAY on the request socket does not follow disable_nagle_algorithm",
        expected=f"TCP_NODELAY {'set' if disable else 'clear'} (b'{int(disable)}')",
        observed=", ".join(map(repr, seen)),
    )


@scenario(
    "stream.half_close",
    title="After the client's SHUT_WR the handler reads EOF and can still reply",
    transports=STREAMS,
    params={"sizes": [(0, 1, 5000, 300_000)]},
    checks=FULL_CHECKS,
)
def half_close(ctx: Context, sizes: tuple[int, ...]) -> None:
    """A client's half-close gives rfile EOF after exactly the bytes sent, EOF stays EOF,
    and the handler's reply written afterwards reaches the client in full."""

    def handle(h: Any) -> None:
        data, again = h.rfile.read(), h.rfile.read()
        h.wfile.write(b"%d %d\n" % (len(data), len(again)))
        h.wfile.write(data[::-1])

    ctx.server(ctx.handler(handle), request_queue_size=len(sizes))
    payloads = [ctx.payload(n) for n in sizes]
    results = ctx.swarm([(Send(p), ShutdownWrite(), RecvAll()) for p in payloads])
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, [b"%d 0\n" % len(p) + p[::-1] for p in payloads])


@scenario(
    "stream.reset_mid_request",
    title="A client resetting mid-request does not stop the server",
    transports=STREAMS,
    params={"resets": [4]},
    checks=FULL_CHECKS,
)
def reset_mid_request(ctx: Context, resets: int) -> None:
    """Clients that reset with half a request sent leave a server that still shuts down
    and closes each of their requests and then serves the next client."""
    ctx.server(ctx.handler(echo_lines), request_queue_size=resets + 1)
    aborted = [(Send(_line(ctx, 100) + b"x"), Pause(0.02), Reset()) for _ in range(resets)]
    ctx.swarm(aborted)
    ctx.expect(
        ctx.wait_events("shutdown_request", resets),
        "stream.reset_request_closed",
        "not every reset client's request reached shutdown_request",
        expected=f"{resets} shutdown_request calls",
        observed=f"{len([e for e in ctx.events('shutdown_request') if e.phase == 'call'])}",
    )
    later = [(Send(b"still serving\n"), RecvLine(), ShutdownWrite(), ExpectEOF())]
    results = ctx.swarm(later, timeout=5.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, [b"still serving\n"])


@scenario(
    "stream.reset_before_flush",
    title="A client that resets before the buffered reply is flushed: finish() still closes wfile",
    transports=STREAMS,
    kinds=("sync",),
    params={"wbufsize": [1 << 16], "resets": [2]},
    checks=FULL_CHECKS,
)
def reset_before_flush(ctx: Context, wbufsize: int, resets: int) -> None:
    """A reply still in a buffered wfile when the client resets cannot be sent: finish()'s
    flush fails, and so does the one close() makes (so finish() may raise, and then
    handle_error reports it), but wfile ends up closed -- its unsendable bytes dropped, not
    left for the garbage collector to flush (and report on stderr) -- and every request
    is still shut down, with the server serving the next client."""
    files: list[Any] = []  # the wfiles, to read .closed once finish() has run

    def handle(h: Any) -> None:
        files.append(h.wfile)
        h.rfile.readline()
        h.wfile.write(b"x" * (wbufsize // 2))  # fits the buffer: nothing is sent yet
        h.connection.sendall(b"ready\n")
        try:
            h.connection.recv(1)  # ends at the client's reset (EOF or ECONNRESET)
        except OSError:
            pass

    ctx.server(ctx.handler(handle, wbufsize=wbufsize, timeout=5.0), request_queue_size=resets)
    ctx.swarm([(Send(b"go\n"), RecvLine(), Reset())] * resets, timeout=5.0)
    ctx.expect(
        ctx.wait_requests_done(),
        "stream.reset_request_closed",
        "not every reset client's request reached shutdown_request",
        expected=f"{resets} requests shut down",
        observed=f"{len(ctx.events('shutdown_request'))} shutdown_request events",
    )
    still_open = [f for f in files if not f.closed]
    for f in still_open:  # the mutant-style leftover: close it here, not in the collector
        with contextlib.suppress(OSError):
            f.close()
    ctx.expect(
        len(files) == resets and not still_open,
        "stream.reset_wfile_closed",
        "finish() left wfile open after its final flush failed (the client had reset)",
        expected=f"{resets} handlers, each wfile closed after finish()",
        observed=f"{len(files)} handlers, {len(still_open)} wfile(s) left open",
    )
    results = ctx.swarm([(Send(b"go\n"), RecvLine(), ShutdownWrite(), RecvAll())], timeout=5.0)
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, [b"ready\n" + b"x" * (wbufsize // 2)])


@scenario(
    "stream.eof_with_held_file",
    title="The client sees EOF at the end of its request despite a file left open on it",
    transports=STREAMS,
    params={"clients": [3]},
    checks=FULL_CHECKS,
)
def eof_with_held_file(ctx: Context, clients: int) -> None:
    """When a handler leaves a makefile() of the connection open, the client still sees
    EOF as soon as its request ends: shutdown_request half-closes before closing."""
    held: list[Any] = []

    def handle(h: Any) -> None:
        held.append(h.request.makefile("rb"))  # forgotten, as careless handlers do
        h.wfile.write(h.rfile.readline())

    ctx.server(ctx.handler(handle), request_queue_size=clients)
    lines_sent = [_line(ctx, 100) + b"\n" for _ in range(clients)]
    results = ctx.swarm([(Send(x), RecvLine(), ExpectEOF()) for x in lines_sent], timeout=4.0)
    for stray in held:
        stray.close()
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, lines_sent)


@scenario(
    "stream.read_timeout",
    title="A read timed out by the handler's timeout raises, and the handler can still reply",
    transports=STREAMS,
    params={"timeout": [0.05], "clients": [2]},
    checks=FULL_CHECKS,
)
def read_timeout(ctx: Context, timeout: float, clients: int) -> None:
    """With a handler timeout, an rfile read from a client that sends nothing raises
    TimeoutError after about that long (>= 0.9 x timeout, < timeout + 1.5 s), and the
    handler can still write its reply on the same connection."""

    def handle(h: Any) -> None:
        started, outcome = time.monotonic(), b"data"
        # socket.timeout, not TimeoutError: the two are one class only since 3.10
        # (bpo-42413), and this handler also runs in workers of older Pythons.
        try:
            h.rfile.readline()
        except socket.timeout:
            outcome = b"timeout"
        h.wfile.write(b"%s %.4f\n" % (outcome, time.monotonic() - started))

    ctx.server(ctx.handler(handle, timeout=timeout), request_queue_size=clients)
    results = ctx.swarm([(RecvLine(), ExpectEOF())] * clients, timeout=timeout + 4.0)
    checks.clients_ok(ctx, results)
    for r in results:
        outcome, _, elapsed = r.received.partition(b" ")
        ctx.expect(
            outcome == b"timeout" and 0.9 * timeout <= float(elapsed or 0) < timeout + 1.5,
            "stream.read_timeout",
            f"client {r.index}: the read did not time out after about {timeout:g}s",
            expected=f"TimeoutError after {0.9 * timeout:g}..{timeout + 1.5:g}s",
            observed=repr(r.received) if r.ok else f"no reply ({r.error})",
        )


@scenario(
    "stream.wfile_closed_by_handler",
    title="wfile is a writable file the handler may close itself; finish() then leaves it",
    transports=STREAMS,
    kinds=("sync",),
    params={"wbufsize": [0, 4096], "close": [True]},
    checks=FULL_CHECKS,
)
def wfile_closed_by_handler(ctx: Context, wbufsize: int, close: bool) -> None:
    """rfile.readable() and wfile.writable() are true in handle(); a handler that writes
    its reply and closes wfile gets the reply to the client, and finish() raises
    nothing (no handle_error) — with an unbuffered (0) and a buffered wfile alike."""

    def handle(h: Any) -> None:
        line = h.rfile.readline()
        h.wfile.write(b"%d%d " % (bool(h.rfile.readable()), bool(h.wfile.writable())) + line)
        if close:
            h.wfile.close()

    ctx.server(ctx.handler(handle, wbufsize=wbufsize))
    lines = [_line(ctx, 60) + b"\n" for _ in range(2)]
    results = ctx.swarm([(Send(line), RecvAll()) for line in lines])
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, [b"11 " + line for line in lines])
    ctx.wait_requests_done()
    raised = [e for e in ctx.events("finish") if e.phase == "raise"]
    ctx.expect(
        not raised and not ctx.events("handle_error"),
        "stream.finish_after_close",
        "finish() raised after the handler closed wfile" if close else "finish() raised",
        expected="finish() returns; no handle_error",
        observed=f"{len(raised)} finish() raised, {len(ctx.events('handle_error'))} handle_error",
    )
